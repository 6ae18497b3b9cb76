"""Uploads the API must decode the same way whatever their byte order, and decode quietly:
the real Pillow-based ``decode_rgb`` (the fakes of tests/unit skip it)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import pytest
import torch
from PIL import Image

from eurosat_service.adapters.preprocessing import decode_rgb
from eurosat_service.domain.errors import InvalidImage, UnsupportedImageFormat


def gray_tiff(mode: str, values: list[int], side: int = 64) -> bytes:
    byte_order = ">" if mode == "I;16B" else "<"
    image = Image.frombytes(mode, (side, side), struct.pack(f"{byte_order}{len(values)}H", *values))
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    return buffer.getvalue()


def test_sixteen_bit_tiffs_of_either_byte_order_become_the_same_8_bit_rgb() -> None:
    values = [1000 + 7 * n for n in range(64 * 64)]  # 1000..29665, row by row
    tiffs = {mode: gray_tiff(mode, values) for mode in ("I;16", "I;16B", "I;16L")}
    with Image.open(io.BytesIO(tiffs["I;16B"])) as big_endian:
        assert big_endian.mode == "I;16B"  # what a big-endian TIFF opens as (I;16L opens as I;16)
    decoded = {mode: decode_rgb(data) for mode, data in tiffs.items()}
    expected = [(v - 1000) * 255 / (29665 - 1000) for v in values]  # its own range stretched to 0..255
    for mode, pixels in decoded.items():
        assert pixels.shape == (3, 64, 64) and pixels.dtype == torch.uint8, mode
        assert torch.equal(pixels[0], pixels[1]) and torch.equal(pixels[1], pixels[2]), mode  # gray
        assert max(abs(got - want) for got, want in zip(pixels[0].flatten().tolist(), expected)) <= 1, mode
        assert torch.equal(pixels, decoded["I;16"]), mode


def tiff_with_a_tag_past_its_end() -> bytes:
    """A valid 64x64 TIFF whose description tag claims more bytes than the file has: Pillow
    skips the tag with a ``UserWarning`` and decodes the image."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, "TIFF", tiffinfo={270: "a description " * 4})
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if struct.unpack_from("<H", data, entry)[0] == 270:
            struct.pack_into("<I", data, entry + 4, 1_000_000)  # the count
            return bytes(data)
    raise AssertionError("no description tag written")


def decode_in_a_fresh_interpreter(data: bytes, times: int = 1, json_logs: bool = False) -> subprocess.CompletedProcess:
    """``decode_rgb(data)`` ``times`` over in a new interpreter importing torch as the service does
    (``torch_classifier`` first: it hides the CPU-only wheel's numpy warning), with the service's
    JSON logs if asked; one stdout line per decode, "decoded" or the error's class name. Only
    there is stderr honest: pytest records warnings and log records itself."""
    script = (
        "import sys\n"
        "import eurosat_service.adapters.torch_classifier\n"
        "from eurosat_service.adapters.preprocessing import decode_rgb\n"
        "from eurosat_service.entrypoints.json_logging import setup_json_logging\n"
        f"if {json_logs}:\n"
        "    setup_json_logging()\n"
        "data = sys.stdin.buffer.read()\n"
        f"for _ in range({times}):\n"
        "    try:\n"
        "        assert decode_rgb(data).shape == (3, 64, 64)\n"
        "        print('decoded')\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    return subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=280)


@pytest.mark.timeout(300)
def test_pillow_warnings_about_an_upload_never_reach_stderr() -> None:
    done = decode_in_a_fresh_interpreter(tiff_with_a_tag_past_its_end(), times=3)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "decoded\n" * 3
    assert done.stderr == b""


def corrupt_lzw_tiff() -> bytes:
    """A 64x64 LZW-compressed TIFF whose strip is scrambled: libtiff decodes it, fails, and
    reports the error through its own handler (which by default prints to stderr)."""
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, "TIFF", compression="tiff_lzw")
    data = bytearray(buffer.getvalue())
    for n in range(200, 260):
        data[n] ^= 0x5A
    return bytes(data)


@pytest.mark.timeout(300)
def test_libtiff_errors_about_a_corrupt_upload_never_reach_stderr() -> None:
    done = decode_in_a_fresh_interpreter(corrupt_lzw_tiff())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "InvalidImage\n"
    assert done.stderr == b""  # not libtiff's "Using code not yet in table." amid the JSON log lines


def multiband_tiff(bands: int = 13, side: int = 64) -> bytes:
    """An uncompressed 16-bit TIFF of ``bands`` bands, like EuroSAT's multispectral tiles
    (which Pillow cannot open), written tag by tag."""
    pixels = bytes(2 * bands * side * side)
    per_band = 8 + len(pixels)  # BitsPerSample, one short per band, right after the pixels
    tags = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, bands, per_band), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 8), (277, 3, 1, bands), (278, 4, 1, side), (279, 4, 1, len(pixels))]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + struct.pack("<HH" if kind == 3 and count == 1 else "<I", value,
                                                             *([0] if kind == 3 and count == 1 else []))
        for tag, kind, count, value in tags) + struct.pack("<I", 0)
    head = b"II*\x00" + struct.pack("<I", per_band + 2 * bands)
    return head + pixels + struct.pack(f"<{bands}H", *[16] * bands) + ifd


def test_a_tiff_pillow_cannot_read_is_not_called_an_image_in_no_supported_format() -> None:
    with pytest.raises(UnsupportedImageFormat) as refused:
        decode_rgb(multiband_tiff())
    assert str(refused.value).startswith("a TIFF whose pixel layout is not supported")  # not "not ... TIFF, ..."


@pytest.mark.timeout(300)
def test_a_clients_bad_tiff_logs_no_error_line_beside_its_415() -> None:
    """Pillow logs "More samples per pixel than can be decoded" at ERROR for such an upload; the
    request's own line reports it, an error-level line would page an operator for a client's file."""
    done = decode_in_a_fresh_interpreter(multiband_tiff(), json_logs=True)
    assert done.stdout.decode().split() == ["UnsupportedImageFormat"], done.stderr  # a 415
    assert done.stderr == b""


def jpeg_with_exif(*entries: bytes) -> bytes:
    """A 64x32 JPEG (left half red, right half blue) with a big-endian EXIF IFD of ``entries``."""
    image = Image.new("RGB", (64, 32), (200, 0, 0))
    image.paste((0, 0, 200), (32, 0, 64, 32))
    exif = b"Exif\x00\x00MM\x00*" + struct.pack(">IH", 8, len(entries)) + b"".join(entries) + struct.pack(">I", 0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_an_exif_tag_of_the_wrong_type_does_not_stop_the_orientation_being_applied() -> None:
    rotate = struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)  # Orientation 6: turn 90 degrees clockwise
    bad_width = struct.pack(">HHI4s", 0x0100, 2, 4, b"cam\x00")  # ImageWidth as text (a SHORT or LONG)
    # Pillow's exif_transpose raised struct.error rewriting these tags after turning the image (a 500)
    assert torch.equal(decode_rgb(jpeg_with_exif(bad_width, rotate)), decode_rgb(jpeg_with_exif(rotate)))
    assert not torch.equal(decode_rgb(jpeg_with_exif(rotate)), decode_rgb(jpeg_with_exif()))  # it was turned


def tiff_with_strip_offsets_as_text() -> bytes:
    """A 64x64 TIFF whose StripOffsets tag claims the ASCII type: Pillow reads the offset as a
    string and raises TypeError seeking to it."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if struct.unpack_from("<H", data, entry)[0] == 273:
            struct.pack_into("<H", data, entry + 2, 2)  # the type: ASCII
            return bytes(data)
    raise AssertionError("no StripOffsets tag written")


def test_a_tiff_whose_tags_have_the_wrong_type_is_an_invalid_image_not_a_crash() -> None:
    with pytest.raises(InvalidImage, match="image could not be decoded"):
        decode_rgb(tiff_with_strip_offsets_as_text())
