"""The one image preprocessing path, imported by training, evaluation and serving alike.

``decode_rgb`` turns encoded bytes into a 3xSxS uint8 tensor; ``normalize`` turns a uint8 batch
into the float input of the network. Training caches the uint8 tensors (and augments them);
serving calls the same two functions per request, so both see identical pixels.

What happens to inputs that are not 64x64 RGB JPEGs like EuroSAT's:
- EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images (of either byte
  order) become 8-bit RGB; an alpha channel is dropped (EuroSAT has none, and compositing would
  invent a background).
- A non-square image is centre-cropped to a square, then resized to ``size`` with Pillow's
  bilinear filter with antialiasing. A model trained on 10 m/pixel tiles sees a resized image at
  another ground resolution, so results on large photos are only as good as that resemblance.
- Resizing comes before the conversion to 8-bit RGB, in the pixel format the file decodes to,
  so a 4096x4096 16-bit PNG is not converted at full size (176 MiB more peak RSS per decode). For
  RGB and grayscale the pixels are the same either way; a 16-bit image is stretched over the
  resized image's range. Bilevel, palette and alpha images are converted first
  (``_CONVERTED_BEFORE_RESIZING``). The filter near the square's edges reads the pixels just
  outside it, as when the whole image is resized.
- Broken EXIF metadata is ignored (the image is taken as upright).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import struct
import threading
import warnings

import torch
from PIL import (  # noqa: F401  (importing a plugin registers its format; see FORMATS)
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from eurosat_service.domain.errors import ImageTooLarge, InvalidImage, UnsupportedImageFormat
from eurosat_service.domain.model_card import Normalization

# The formats a land-cover tile plausibly comes in, their plugins imported above (Pillow only
# looks among registered formats when given a list). Otherwise Pillow tries each of its ~40
# plugins in turn on an unknown upload: more parsers facing untrusted bytes, and slower.
FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF")

# Pillow's own bomb check only raises at twice its limit; we refuse before decoding instead (so
# Pillow never warns or raises about bombs itself).
DEFAULT_MAX_PIXELS = 4096 * 4096
Image.MAX_IMAGE_PIXELS = None

# An image above LARGE_PIXELS takes up to 8 bytes a pixel while it is decoded and converted
# (128 MiB at the 4096x4096 limit); the workers, or the decode pool, decode side by side, and a
# batch of such PNGs (30-50 KB each) took a 512 MiB task over its limit. So one decodes at a time.
LARGE_PIXELS = 2048 * 2048
_one_at_a_time = threading.Lock()

# Pillow warns about flaws it works around in an upload ("Tag data larger than file", "Possibly
# corrupt EXIF data"): news about the client's file, not the service, and raw text on stderr
# amid the JSON logs. Filtered once here, not with catch_warnings() around each decode: that
# swaps the process-wide filter list (not thread-safe, and the workers decode at once) and
# resets every warning registry, so each warning shown once per place showed on every request.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _silence_libtiff() -> None:
    """libtiff prints its errors about a corrupt TIFF ("Using code not yet in table.") to stderr
    itself, raw text amid the JSON logs; Pillow raises them as an ``OSError`` anyway (a 422).
    So its error and warning handlers (process-wide) are unset, in the libtiff Pillow loaded."""
    try:
        with open("/proc/self/maps") as maps:  # Linux; elsewhere the messages stay
            mapped = {fields[5] for line in maps if len(fields := line.rstrip("\n").split(maxsplit=5)) == 6}
    except OSError:
        return
    for path in mapped:
        if not path.rpartition("/")[2].startswith("libtiff"):
            continue
        try:
            libtiff = ctypes.CDLL(path)  # the library already loaded: the same handlers
        except OSError:
            continue
        for setter in (libtiff.TIFFSetErrorHandler, libtiff.TIFFSetWarningHandler):
            setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
            setter(None)


_silence_libtiff()


# What Pillow raises for a corrupt upload: the exceptions its own fuzz tests accept, TypeError,
# which a TIFF tag of the wrong type raises (StripOffsets as text: "'str' object cannot be
# interpreted as an integer"), and struct.error, which a short metadata block raises. Each is the
# client's file, a 422, not a 500.
_PILLOW_INPUT_ERRORS = (OSError, SyntaxError, ValueError, TypeError, NotImplementedError, OverflowError,
                        EOFError, struct.error)


def decode_rgb(data: bytes, size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Decode one encoded image to a ``(3, size, size)`` uint8 tensor, or raise a domain error."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size  # read from the header: nothing is decoded yet
        if width * height > max_pixels:
            raise ImageTooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
        if image.format == "JPEG" and min(width, height) > 2 * size:
            image.draft("RGB", (size, size))  # let libjpeg downscale while decoding (image.size shrinks)
        with _one_at_a_time if image.width * image.height > LARGE_PIXELS else contextlib.nullcontext():
            image.load()
            image = _to_rgb(_resized(_upright(image), size))
    except (ImageTooLarge, InvalidImage):
        raise
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except _PILLOW_INPUT_ERRORS as exc:
        raise InvalidImage(f"image could not be decoded: {exc}") from None
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    # A channels-first view, not a copy: every caller stacks images into a batch, which copies.
    return pixels.view(size, size, 3).permute(2, 0, 1)


# EXIF orientation -> the transposition that makes the image upright (as in ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation. Not ``ImageOps.exif_transpose``: it also rewrites the EXIF
    bytes, which we never use, and raised ``struct.error`` on a tag of the wrong type (a 500).
    EXIF that cannot be parsed (a PNG's or WebP's cut short, or not TIFF-structured at all) says
    nothing about the pixels, which decoded: the image is taken as upright."""
    try:
        orientation = image.getexif().get(0x0112)  # the Orientation tag (or XMP's)
    except Exception:  # noqa: BLE001  (any failure to parse optional metadata: SyntaxError, struct.error, ...)
        return image
    method = _UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


# How each supported format's files begin: a file that does but that Pillow cannot identify is
# that format cut short or corrupt (a 422), not a file in no supported format (a 415).
_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))
_TIFF_HEADERS = {b"II*\x00": "<I", b"MM\x00*": ">I", b"II+\x00": "<Q", b"MM\x00+": ">Q"}


def _unidentified(data: bytes) -> InvalidImage:
    """What to say of a file Pillow could not identify. Pillow cannot tell a TIFF with a pixel
    layout it does not read (EuroSAT's 13-band tiles, float RGB) from a file in no known format,
    nor a truncated header from either: "not ... (JPEG, PNG, TIFF, ...)" would mislead."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return InvalidImage(f"a truncated or corrupt {name} file: its header could not be read")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return InvalidImage("a truncated or corrupt WEBP file: its header could not be read")
    if (offset_format := _TIFF_HEADERS.get(data[:4])) is not None:
        at = 4 if offset_format[1] == "I" else 8  # where the first directory's offset is (BigTIFF: 8)
        size = struct.calcsize(offset_format)
        if len(data) < at + size or struct.unpack_from(offset_format, data, at)[0] + 2 > len(data):
            return InvalidImage("a truncated TIFF file: it ends before its first image directory")
        return UnsupportedImageFormat(
            "a TIFF whose pixel layout is not supported (such as more than 4 bands, or float RGB); "
            "send 8- or 16-bit RGB or grayscale")
    return UnsupportedImageFormat(f"not an image in a supported format ({', '.join(FORMATS)})")


# Pillow resizes bilevel and palette images by nearest neighbour whatever the filter, and images
# with alpha premultiplied by it: these become RGB first, so their alpha is dropped, not blended.
_CONVERTED_BEFORE_RESIZING = frozenset({"1", "P", "PA", "LA", "La", "RGBA", "RGBa"})


def _resized(image: Image.Image, size: int) -> Image.Image:
    """The centre square, resized to ``size`` in the decoded pixel format (see the module's
    docstring): no full-size copy or conversion, except for the modes that must be converted first
    (``_CONVERTED_BEFORE_RESIZING``, big-endian 16-bit)."""
    if image.size == (size, size):
        return image
    if image.mode in _CONVERTED_BEFORE_RESIZING:
        image = _to_rgb(image)
    elif image.mode.startswith("I;16") and image.mode not in ("I;16", "I;16L"):
        image = image.convert("I")  # Pillow's filters read big-endian 16-bit samples as little-endian
    return image.resize((size, size), Image.Resampling.BILINEAR, box=_centre_square(*image.size))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")  # getextrema() and point() refuse the big-endian I;16B
    if image.mode in ("I", "F"):
        # Scale high bit-depth single-band images to 8 bits over their own range.
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = image.point(lambda v: (v - lo) * scale).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def normalize(batch: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """``(N, 3, H, W)`` on a 0-255 scale (uint8, or augmented float) -> standardised float32."""
    mean = torch.tensor(normalization.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(normalization.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch.to(torch.float32) / 255.0 - mean).div_(std)
