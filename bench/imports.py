"""How fast and how lean the address-book readers are, against the plain parsers.

Run with `.venv/bin/python bench/imports.py` (about two minutes: a 1,000,000-row Google CSV
and a 100,000-card Apple-style vCard 3.0 file, written to a temporary folder), or with
`--rows 20000 --cards 2000` for a quick run. Each measurement runs in a fresh Python process
whose peak resident memory is read from the kernel when it ends (`os.wait4`); only the
parsing loop is timed, not the interpreter's start or imports.

Measured: courtois's reader with each address normalised by `parse_address` (what the
import service does), the reader alone, the csv module alone on the same file, the csv
module plus `parse_address` on the address columns (the floor for the first figure), and
`vobject.readComponents` alone on the vCard file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import cpu_model, figure, write

CSV_TARGET_RATIO = 3.0  # courtois + normalisation within 3x of bare csv parsing
MEMORY_TARGET_MB = 200
GOOGLE_HEADER = (
    "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,"
    "Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,"
    "Organization Title,Organization Department,Birthday,Notes,Photo,Labels,"
    "E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,"
    "Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value,"
    "Address 1 - Label,Address 1 - Formatted,Address 1 - Street,Address 1 - City,"
    "Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,"
    "Address 1 - Extended Address,Website 1 - Label,Website 1 - Value"
)
FIRST = ["Ana", "Bo", "Chloé", "Dmitri", "Élodie", "Farid", "Grace", "Hugo", "Inès", "Jun"]
LAST = ["Lima", "Berg", "Dupré", "Ivanov", "Nakamura", "Okafor", "Müller", "García", "Smith"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "exemple.fr", "post.example.de"]


# --- the files -------------------------------------------------------------------------------


def _person(rng: random.Random, index: int) -> tuple[str, str, list[str]]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "x"
    count = rng.choices((0, 1, 2), weights=(4, 70, 26))[0]
    emails = [f"{local}.{index}.{n}@{rng.choice(DOMAINS)}" for n in range(count)]
    return first, last, emails


def write_google_csv(path: Path, rows: int, seed: int = 7) -> int:
    """A Google Contacts export (current "Label/Value" columns), UTF-8 with CRLF; returns
    the number of addresses written."""
    rng = random.Random(seed)
    width = GOOGLE_HEADER.count(",") + 1
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(GOOGLE_HEADER + "\r\n")
        for index in range(rows):
            first, last, emails = _person(rng, index)
            cells = [""] * width
            cells[0], cells[2], cells[16] = first, last, "* myContacts"
            cells[10] = rng.choice(["", "", "Acme", "Globex", "Initech"])
            written += len(emails)
            for n, email in enumerate(emails):
                cells[17 + 2 * n] = rng.choice(["* Home", "* Work", "Other"])
                cells[18 + 2 * n] = email
            cells[21], cells[22] = "Mobile", f"+33 6 {rng.randrange(10**8):08d}"
            if rng.random() < 0.02:
                cells[14] = '"Met at the conference, 2019.\nSee ""notes"" file."'
            out.write(",".join(cells) + "\r\n")
    return written


def write_vcards(path: Path, cards: int, seed: int = 11) -> int:
    """An Apple Contacts vCard 3.0 export; one card in 20 carries a 6 KB base64 PHOTO.
    Returns the number of addresses written."""
    rng = random.Random(seed)
    written = 0
    photo = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in range(8000)
    )
    folded_photo = "\r\n ".join(photo[i : i + 74] for i in range(0, len(photo), 74))
    with path.open("w", encoding="utf-8", newline="") as out:
        for index in range(cards):
            first, last, emails = _person(rng, index)
            lines = [
                "BEGIN:VCARD",
                "VERSION:3.0",
                "PRODID:-//Apple Inc.//macOS 14.2//EN",
                f"N:{last};{first};;;",
                f"FN:{first} {last}",
                f"ORG:{rng.choice(['Acme', 'Globex', 'Initech'])};",
            ]
            written += len(emails)
            for n, email in enumerate(emails):
                lines.append(f"item{n + 1}.EMAIL;type=INTERNET;type=pref:{email}")
                lines.append(f"item{n + 1}.X-ABLabel:_$!<Other>!$_")
            lines += [
                f"TEL;type=CELL;type=VOICE;type=pref:+33 6 {rng.randrange(10**8):08d}",
                "ADR;type=HOME;type=pref:;;12 rue des Lilas;Paris;;75011;France",
                "NOTE:Met at the conference in 2019\\, introduced by a friend of a friend o\r\n"
                " f ours who works in the same building.",
            ]
            if index % 20 == 0:
                lines.append("PHOTO;ENCODING=b;TYPE=JPEG:" + folded_photo)
            lines += [f"UID:{index:08d}-0000-4000-8000-{rng.getrandbits(48):012x}", "END:VCARD"]
            out.write("\r\n".join(lines) + "\r\n")
    return written


# --- one measurement, in its own process ------------------------------------------------------


def child(mode: str, path: str) -> dict[str, float]:
    """Run one measurement in this process and return its counts and seconds.

    "seconds" is the CPU time of the loop, which other work on a shared machine disturbs
    far less than the wall-clock time ("wall", reported beside it); rates and ratios use it.
    """
    contacts = problems = rows = 0
    if mode in ("courtois-csv", "courtois-vcard", "courtois-csv-raw", "courtois-vcard-raw"):
        from courtois.domain.addresses import parse_address
        from courtois.domain.contacts import ContactInput
        from courtois.domain.errors import InvalidInput
        from courtois.importers import read_contacts

        normalise = not mode.endswith("-raw")
        rejected = 0
        with open(path, "rb") as stream:
            start, cpu = time.perf_counter(), time.process_time()
            for record in read_contacts(stream, "csv" if "csv" in mode else "vcard"):
                if type(record) is ContactInput:
                    contacts += 1
                    if normalise:
                        try:
                            parse_address(record.email)
                        except InvalidInput:
                            rejected += 1
                else:
                    problems += 1
            seconds = time.process_time() - cpu
            wall = time.perf_counter() - start
        if rejected:
            raise SystemExit(f"{rejected} generated addresses were rejected")
        return {"contacts": contacts, "problems": problems, "seconds": seconds, "wall": wall}
    if mode in ("bare-csv", "bare-csv-normalise"):
        import csv

        from courtois.domain.addresses import parse_address

        with open(path, encoding="utf-8", newline="") as stream:
            start, cpu = time.perf_counter(), time.process_time()
            reader = csv.reader(stream)
            header = next(reader)
            columns = [
                i
                for i, name in enumerate(header)
                if name.startswith("E-mail") and name.endswith(" - Value")
            ]
            # Two loops, so that the bare figure pays for no test of the mode on each row.
            if mode == "bare-csv-normalise":
                for row in reader:
                    rows += 1
                    for i in columns:
                        if row[i]:
                            parse_address(row[i])
                            contacts += 1
            else:
                for _row in reader:
                    rows += 1
            seconds = time.process_time() - cpu
            wall = time.perf_counter() - start
        return {"rows": rows, "contacts": contacts, "seconds": seconds, "wall": wall}
    if mode == "bare-vobject":
        import vobject

        with open(path, encoding="utf-8", newline="") as stream:
            start, cpu = time.perf_counter(), time.process_time()
            for _card in vobject.readComponents(stream):
                rows += 1
            seconds = time.process_time() - cpu
            wall = time.perf_counter() - start
        return {"cards": rows, "seconds": seconds, "wall": wall}
    raise SystemExit(f"unknown mode {mode}")


def measure(mode: str, path: Path) -> tuple[dict[str, float], float]:
    """(the child's figures, its peak RSS in MB), from a fresh interpreter."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"measurement {mode} failed (exit {process.returncode})")
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return json.loads(output), peak_mb


def report(label: str, figures: dict[str, float], peak_mb: float, unit: str) -> None:
    count = figures[unit]
    rate = count / figures["seconds"]
    print(
        f"{label:<44} {figures['seconds']:7.2f} s cpu ({figures['wall']:6.2f} s wall)  "
        f"{rate:>11,.0f} {unit}/s  "
        f"peak RSS {peak_mb:6.1f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Google CSV rows")
    parser.add_argument("--cards", type=int, default=100_000, help="vCard cards")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    print(
        f"courtois import bench: {args.rows:,} CSV rows, {args.cards:,} vCards; "
        f"cpu {cpu_model()}; cores {os.cpu_count()}; python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.2f} (a busy machine slows every figure)"
    )
    with tempfile.TemporaryDirectory(prefix="courtois-bench-imports-") as folder:
        csv_path, vcf_path = Path(folder) / "google.csv", Path(folder) / "contacts.vcf"
        csv_addresses = write_google_csv(csv_path, args.rows)
        vcf_addresses = write_vcards(vcf_path, args.cards)
        print(
            f"files: google.csv {csv_path.stat().st_size / 1e6:.1f} MB, "
            f"contacts.vcf {vcf_path.stat().st_size / 1e6:.1f} MB"
        )
        ours, ours_mb = measure("courtois-csv", csv_path)
        report("csv: courtois reader + parse_address", ours, ours_mb, "contacts")
        raw, raw_mb = measure("courtois-csv-raw", csv_path)
        report("csv: courtois reader alone", raw, raw_mb, "contacts")
        bare, bare_mb = measure("bare-csv", csv_path)
        report("csv: csv module alone", bare, bare_mb, "rows")
        floor, floor_mb = measure("bare-csv-normalise", csv_path)
        report("csv: csv module + parse_address (floor)", floor, floor_mb, "contacts")
        if not ours["contacts"] == raw["contacts"] == floor["contacts"] == csv_addresses:
            raise SystemExit(f"csv: {csv_addresses} addresses written, {ours} {raw} {floor}")
        ratio = ours["seconds"] / bare["seconds"]
        verdict = "met" if ratio <= CSV_TARGET_RATIO else "MISSED"
        print(
            f"csv ratio: courtois+normalisation / bare csv = {ratio:.2f}x "
            f"(target <= {CSV_TARGET_RATIO:.0f}x: {verdict}); reader alone / bare csv = "
            f"{raw['seconds'] / bare['seconds']:.2f}x; floor / bare csv = "
            f"{floor['seconds'] / bare['seconds']:.2f}x"
        )

        vours, vours_mb = measure("courtois-vcard", vcf_path)
        report("vcard: courtois reader + parse_address", vours, vours_mb, "contacts")
        vraw, vraw_mb = measure("courtois-vcard-raw", vcf_path)
        report("vcard: courtois reader alone", vraw, vraw_mb, "contacts")
        vobj, vobj_mb = measure("bare-vobject", vcf_path)
        report("vcard: vobject.readComponents alone", vobj, vobj_mb, "cards")
        if (
            not vours["contacts"] == vraw["contacts"] == vcf_addresses
            or vobj["cards"] != args.cards
        ):
            raise SystemExit(f"vcard: {vcf_addresses} addresses written, {vours} {vobj}")
        speedup = vobj["seconds"] / vours["seconds"]
        verdict = "met" if speedup > 1 else "MISSED"
        print(
            f"vcard ratio: vobject / (courtois+normalisation) = {speedup:.1f}x faster "
            f"(target > 1x: {verdict})"
        )
        peak = max(ours_mb, vours_mb)
        verdict = "met" if peak < MEMORY_TARGET_MB else "MISSED"
        print(
            f"memory: courtois peak RSS csv {ours_mb:.1f} MB, vcard {vours_mb:.1f} MB "
            f"(target < {MEMORY_TARGET_MB} MB: {verdict}); vobject {vobj_mb:.1f} MB"
        )
    size = f"{args.rows:,} CSV rows, {args.cards:,} vCards"
    rows = [
        figure(
            "csv: courtois reader + parse_address",
            ours["seconds"],
            "s cpu",
            baseline="csv module alone",
            baseline_value=bare["seconds"],
            goal=f"<= {CSV_TARGET_RATIO:.0f}x",
            met=ratio <= CSV_TARGET_RATIO,
            note=f"{ours['contacts'] / ours['seconds']:,.0f} contacts/s; {size}",
        ),
        figure(
            "vcard: courtois reader + parse_address",
            vours["seconds"],
            "s cpu",
            baseline="vobject.readComponents alone",
            baseline_value=vobj["seconds"],
            goal="< 1x",
            met=speedup > 1,
            note=f"{vours['contacts'] / vours['seconds']:,.0f} contacts/s",
        ),
        figure(
            "peak RSS, largest of csv and vcard",
            peak,
            "MB",
            baseline="target",
            baseline_value=MEMORY_TARGET_MB,
            goal=f"< {MEMORY_TARGET_MB} MB",
            met=peak < MEMORY_TARGET_MB,
        ),
    ]
    write(args.json, "imports", rows, csv_rows=args.rows, vcards=args.cards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
