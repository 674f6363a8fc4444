"""Turning an uploaded document into plain text and searchable chunks."""

import io
import re
from html.parser import HTMLParser

CONTENT_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/html": "html",
    "application/pdf": "pdf",
}
EXTENSIONS = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
CHUNK_CHARACTERS = 1200


class UnreadableDocument(ValueError):
    pass


class _TextFromHTML(HTMLParser):
    SKIP = {"script", "style", "head", "noscript", "template"}
    BLOCKS = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableDocument("The file is not UTF-8 text.")


def extract_text(raw: bytes, content_type: str) -> str:
    kind = CONTENT_TYPES.get(content_type)
    if kind is None:
        raise UnreadableDocument(
            f"Unsupported type {content_type!r}; upload {', '.join(CONTENT_TYPES)}."
        )
    if kind == "pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(raw))
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        except (PdfReadError, ValueError, KeyError) as exc:
            raise UnreadableDocument(f"The PDF cannot be read: {exc}.") from None
    elif kind == "html":
        parser = _TextFromHTML()
        parser.feed(_decode(raw))
        text = "".join(parser.parts)
    else:
        text = _decode(raw)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text).strip()
    if not text:
        raise UnreadableDocument("The document has no text.")
    return text


def chunk_text(text: str, size: int = CHUNK_CHARACTERS) -> list[str]:
    """Paragraphs packed into chunks of about `size` characters; a longer paragraph is split at
    sentence ends, and a longer sentence at spaces."""
    pieces: list[str] = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        sentence_buffer = ""
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if len(sentence_buffer) + len(sentence) + 1 > size and sentence_buffer:
                pieces.append(sentence_buffer)
                sentence_buffer = ""
            sentence_buffer = f"{sentence_buffer} {sentence}".strip()
        if sentence_buffer:
            pieces.append(sentence_buffer)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) + 2 <= size:
            chunks[-1] = f"{chunks[-1]}\n\n{piece}"
        else:
            chunks.append(piece)
    return [c for c in chunks if c.strip()]


def guess_content_type(filename: str, declared: str) -> str:
    declared = declared.split(";")[0].strip().lower()
    if declared in CONTENT_TYPES:
        return declared
    for extension, content_type in EXTENSIONS.items():
        if filename.lower().endswith(extension):
            return content_type
    return declared or "application/octet-stream"
