"""A call checked before any job is opened or spent: the method and params against the agent's
published spec, the image against the formats the services read.

Why: a misspelled method, a value outside its enum or a file that is not an image was "served and
paid" before; the client holds the spec, so such a mistake is refused here, with nothing paid.
Only the image's header and end are read (no decoder imported: the CLI stays fast).
"""

from __future__ import annotations

from typing import Any

from facemarket.cli.errors import RequestInvalid

NOTHING_PAID = "nothing was paid"
# Magic numbers of the formats OpenCV decodes (JPEG, PNG, BMP, WebP, GIF, TIFF, JPEG 2000, PNM).
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"),
          (b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
          (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"))
_JPEG_END, _PNG_END = b"\xff\xd9", b"IEND"


def check_image(data: bytes, name: str = "the image") -> None:
    """Refuse bytes no face service can read: an unknown header, or a JPEG/PNG cut short."""
    kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None and data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
        kind = "PNM"
    if kind is None:
        raise RequestInvalid(f"{name} is not an image the services read (its first bytes are "
                             f"{data[:8].hex() or 'empty'})",
                             f"{NOTHING_PAID}; give a JPEG, PNG, BMP, WebP, GIF or TIFF file")
    end = data[-4096:]
    if (kind == "JPEG" and _JPEG_END not in end) or (kind == "PNG" and _PNG_END not in end):
        raise RequestInvalid(f"{name} is a truncated {kind} (its end marker is missing)",
                             f"{NOTHING_PAID}; give the whole file")


def check_call(document: dict[str, Any], ref: str, method: str, params: dict[str, Any]) -> None:
    """Refuse a call the spec says the service would refuse: unknown method, unknown or missing
    param, a value outside its enum (compared as text: `--param model=5` means "5")."""
    methods = {m.get("name"): m for m in document.get("methods", []) if isinstance(m, dict)}
    if not methods:
        return
    entry = methods.get(method)
    if entry is None:
        raise RequestInvalid(f"{ref} has no method {method!r}",
                             f"{NOTHING_PAID}; its methods: {', '.join(sorted(map(str, methods)))}")
    declared = {p.get("name"): p for p in entry.get("params", []) if isinstance(p, dict)}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise RequestInvalid(f"{ref}.{method} takes no param {unknown[0]!r}",
                             f"{NOTHING_PAID}; its params: {', '.join(map(str, declared)) or 'none'}")
    missing = [n for n, p in declared.items() if p.get("required") and n not in params]
    if missing:
        raise RequestInvalid(f"{ref}.{method} needs {missing[0]!r}",
                             f"{NOTHING_PAID}; give it (`--image FILE` for the image, else "
                             f"--param {missing[0]}=VALUE)")
    for name, value in params.items():
        allowed = (declared[name].get("schema") or {}).get("enum")
        if isinstance(allowed, list) and str(value) not in map(str, allowed):
            raise RequestInvalid(f"{ref}.{method}: {name}={value!r} is not one of "
                                 f"{', '.join(map(str, allowed))}", f"{NOTHING_PAID}; pick one of those")
