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
"""

from __future__ import annotations

import ctypes
import io
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


# What Pillow raises for a corrupt upload: the exceptions its own fuzz tests accept, and TypeError,
# which a TIFF tag of the wrong type raises (StripOffsets as text: "'str' object cannot be
# interpreted as an integer"). Each is the client's file, a 422, not a 500.
_PILLOW_INPUT_ERRORS = (OSError, SyntaxError, ValueError, TypeError, NotImplementedError, OverflowError)


def decode_rgb(data: bytes, size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Decode one encoded image to a ``(3, size, size)`` uint8 tensor, or raise a domain error."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size  # read from the header: nothing is decoded yet
        if width * height > max_pixels:
            raise ImageTooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
        if image.format == "JPEG" and min(width, height) > 2 * size:
            image.draft("RGB", (size, size))  # let libjpeg downscale while decoding
        image.load()
        image = _upright(image)
        image = _to_rgb(image)
    except (ImageTooLarge, InvalidImage):
        raise
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(_unidentified(data)) from None
    except _PILLOW_INPUT_ERRORS as exc:
        raise InvalidImage(f"image could not be decoded: {exc}") from None
    if image.size != (size, size):
        image = _square(image).resize((size, size), Image.Resampling.BILINEAR)
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
    bytes, which we never use, and raised ``struct.error`` on a tag of the wrong type (a 500)."""
    method = _UPRIGHT.get(image.getexif().get(0x0112))  # the Orientation tag (or XMP's)
    return image if method is None else image.transpose(method)


def _unidentified(data: bytes) -> str:
    """Pillow cannot tell a TIFF with a pixel layout it does not read (EuroSAT's 13-band tiles,
    float RGB) from a file in no known format; "not ... (JPEG, PNG, TIFF, ...)" misleads there."""
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return ("a TIFF whose pixel layout is not supported (such as more than 4 bands, or float RGB); "
                "send 8- or 16-bit RGB or grayscale")
    return f"not an image in a supported format ({', '.join(FORMATS)})"


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


def _square(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width == height:
        return image
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def normalize(batch: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """``(N, 3, H, W)`` on a 0-255 scale (uint8, or augmented float) -> standardised float32."""
    mean = torch.tensor(normalization.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(normalization.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch.to(torch.float32) / 255.0 - mean).div_(std)
