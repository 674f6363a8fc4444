"""A small PDF writer: pages of text in Helvetica, nothing else, so an invoice downloads as a real
PDF without a PDF library. `invoice_pdf` lays out what the print-ready invoice page shows.

The output is PDF 1.4 with the standard (non-embedded) Helvetica fonts in WinAnsiEncoding; text
outside that character set is written as "?". Every object's byte offset is recorded in the
cross-reference table, so readers open the file without repairing it.
"""

from dataclasses import dataclass
from typing import Any

PAGE_WIDTH = 595.0  # A4, in points
PAGE_HEIGHT = 842.0
MARGIN = 56.0
LINE_HEIGHT = 16.0

# Helvetica's advance widths (thousandths of the font size) for ASCII 32-126, from its AFM file;
# used to right-align amounts. Helvetica-Bold's digits and most capitals have the same widths.
_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
]  # fmt: skip


def text_width(text: str, size: float) -> float:
    """How wide `text` is in Helvetica at `size` points."""
    units = sum(_WIDTHS[ord(c) - 32] if 32 <= ord(c) <= 126 else 556 for c in text)
    return units * size / 1000


@dataclass(frozen=True)
class Text:
    """A piece of text on a line: at `x` points from the left edge, or ending there if `right`."""

    x: float
    text: str
    bold: bool = False
    size: float = 10.0
    right: bool = False


Line = list[Text]  # one line of a page; an empty list is a blank line


def _escape(text: str) -> bytes:
    encoded = text.encode("cp1252", errors="replace")
    return encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _number(value: float) -> bytes:
    return f"{value:.2f}".rstrip("0").rstrip(".").encode()


def _page_content(lines: list[Line], footer: str) -> bytes:
    out = bytearray()
    y = PAGE_HEIGHT - MARGIN
    for line in lines:
        for piece in line:
            x = piece.x - text_width(piece.text, piece.size) if piece.right else piece.x
            font = b"/F2" if piece.bold else b"/F1"
            out += b"BT " + font + b" " + _number(piece.size) + b" Tf "
            out += _number(x) + b" " + _number(y) + b" Td (" + _escape(piece.text) + b") Tj ET\n"
        y -= LINE_HEIGHT
    out += b"BT /F1 8 Tf " + _number(MARGIN) + b" " + _number(MARGIN / 2)
    out += b" Td (" + _escape(footer) + b") Tj ET\n"
    return bytes(out)


def render(lines: list[Line], *, title: str) -> bytes:
    """A PDF of `lines`, flowing onto as many A4 pages as they need, numbered in the footer."""
    per_page = int((PAGE_HEIGHT - 2 * MARGIN) // LINE_HEIGHT)
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)] or [[]]
    # Objects: 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold, 5 info, then a page and
    # its content stream for each page.
    first_page = 6
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * n) for n in range(len(pages)))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title (" + _escape(title) + b") /Producer (Switchboard) >>",
    ]
    for n, page_lines in enumerate(pages):
        content = _page_content(page_lines, f"{title} - page {n + 1} of {len(pages)}")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 "
            + _number(PAGE_WIDTH)
            + b" "
            + _number(PAGE_HEIGHT)
            + b"] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (first_page + 2 * n + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# Columns of the invoice's table: position, description, quantity, unit price, amount.
_RIGHT_EDGE = PAGE_WIDTH - MARGIN
_COLUMNS = (MARGIN, MARGIN + 24, _RIGHT_EDGE - 190, _RIGHT_EDGE - 95, _RIGHT_EDGE)


def _fit(text: str, width: float, size: float = 10.0) -> str:
    """`text` cut with an ellipsis so it fits in `width` points."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "...", size) > width:
        text = text[:-1]
    return text + "..."


def invoice_pdf(document: dict[str, Any]) -> bytes:
    """The invoice as a PDF, from billing.selectors.invoice_document's data."""
    invoice, tenant = document["invoice"], document["tenant"]
    left, description, quantity, unit, amount = _COLUMNS
    issued = f" - issued {invoice.finalized_at:%Y-%m-%d}" if invoice.finalized_at else ""
    lines: list[Line] = [
        [Text(left, f"Invoice {invoice.number}", bold=True, size=18)],
        [],
        [Text(left, f"{tenant.name} - {invoice.public_id} - status {invoice.status}")],
        [
            Text(
                left,
                f"Period {invoice.period_start:%Y-%m-%d %H:%M} - "
                f"{invoice.period_end:%Y-%m-%d %H:%M} (UTC) - "
                f"plan {invoice.pricing.get('plan_name', invoice.plan.name)}{issued}",
            )
        ],
        [],
        [
            Text(left, "#", bold=True),
            Text(description, "Description", bold=True),
            Text(quantity, "Quantity", bold=True, right=True),
            Text(unit, "Unit price", bold=True, right=True),
            Text(amount, "Amount", bold=True, right=True),
        ],
    ]
    for row in document["lines"]:
        line = row["line"]
        lines.append(
            [
                Text(left, str(line.position)),
                Text(description, _fit(line.description, quantity - description - 60)),
                Text(quantity, str(line.quantity), right=True),
                Text(unit, row["unit"], right=True),
                Text(amount, row["amount"], right=True),
            ]
        )
    lines.append([])
    for label, value, bold in (
        ("Subtotal", document["subtotal"], False),
        ("Discounts", document["discount"], False),
        ("Total", document["total"], True),
    ):
        lines.append(
            [Text(unit, label, bold=bold, right=True), Text(amount, value, bold=bold, right=True)]
        )
    if document["credit_notes"]:
        lines += [[], [Text(left, "Credit notes", bold=True, size=12)], []]
        for note, credited in document["credit_notes"]:
            lines.append(
                [
                    Text(left, note.public_id),
                    Text(left + 150, _fit(note.reason, unit - left - 200)),
                    Text(unit, f"{note.quantity} units", right=True),
                    Text(amount, credited, right=True),
                ]
            )
    return render(lines, title=f"Invoice {invoice.number} - {tenant.name}")
