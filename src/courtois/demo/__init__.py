"""`courtois demo`: the whole product in one local process, mail caught instead of sent.

The API, the pages, the worker and a capture SMTP server run side by side on a SQLite
database of their own, seeded with a demo platform, a demo member and a sample address
book; what the worker sends lands in the outbox viewer (`/outbox`), never on the Internet.
"""
