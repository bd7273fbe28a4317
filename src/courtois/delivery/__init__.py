"""Delivery adapters: how a decided message leaves (composition and SMTP grow here)."""
