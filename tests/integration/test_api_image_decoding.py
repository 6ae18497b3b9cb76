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


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("exif", [b"MM\x00*", b"garbage!"], ids=["cut-short", "not-tiff"])
def test_broken_exif_is_ignored_and_the_image_decodes(fmt: str, exif: bytes) -> None:
    """An EXIF block cut short raised struct.error (a 500), one not TIFF-structured a 422, for
    pixels that decode fine. Lossless WebP, so both files hold the same pixels."""
    tile = Image.effect_noise((64, 64), 40).convert("RGB")
    options = {"lossless": True} if fmt == "WEBP" else {}
    assert torch.equal(decode_rgb(encoded(tile, fmt, exif=exif, **options)), decode_rgb(encoded(tile, fmt, **options)))


@pytest.mark.parametrize(("fmt", "keep"), [("JPEG", 20), ("PNG", 30), ("GIF", 10), ("WEBP", 12), ("TIFF", 8)])
def test_a_supported_format_cut_short_in_its_header_is_a_corrupt_image_not_an_unknown_format(
        fmt: str, keep: int) -> None:
    data = encoded(Image.effect_noise((64, 64), 40).convert("RGB"), fmt)[:keep]
    with pytest.raises(InvalidImage, match=f"truncated.* {fmt} file") as refused:
        decode_rgb(data)
    assert not isinstance(refused.value, UnsupportedImageFormat)  # a 422, not a 415


def test_files_in_no_supported_format_are_still_unsupported() -> None:
    for data in (b"plain text, not an image", b"%PDF-1.7\n", encoded(Image.new("RGB", (8, 8)), "ICO")):
        with pytest.raises(UnsupportedImageFormat, match="not an image in a supported format"):
            decode_rgb(data)


def test_a_large_image_is_resized_the_same_whether_before_or_after_conversion() -> None:
    """RGB and gray are resized in the decoded format, before conversion; images with alpha are
    converted first. Either way the pixels are those of the RGB image resized."""
    photo = Image.effect_noise((300, 200), 60).convert("RGB")
    box = (50, 0, 250, 200)
    for mode in ("RGB", "L", "RGBA", "LA"):
        image = photo.convert(mode)
        if "A" in mode:  # alpha is dropped, not blended in by resizing (as Pillow's filters would)
            image.putalpha(Image.linear_gradient("L").resize((300, 200)))
        expected = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR, box=box)
        got = decode_rgb(encoded(image, "PNG"))
        assert torch.equal(got, torch.frombuffer(bytearray(expected.tobytes()), dtype=torch.uint8)
                           .view(64, 64, 3).permute(2, 0, 1)), mode


def test_large_sixteen_bit_images_of_either_byte_order_resize_the_same() -> None:
    """Pillow's filters misread big-endian 16-bit samples, so those are widened before resizing."""
    values = [(n * 7919) % 65536 for n in range(256 * 256)]
    decoded = {mode: decode_rgb(gray_tiff(mode, values, side=256)) for mode in ("I;16", "I;16B", "I;16L")}
    assert torch.equal(decoded["I;16B"], decoded["I;16"]) and torch.equal(decoded["I;16L"], decoded["I;16"])


def peak_rss_growth_mib(data: bytes, steps: list[str], setup: str = "") -> list[int]:
    """Runs ``steps`` (Python, with ``data`` and ``decode_rgb`` at hand) in turn in a fresh
    interpreter; how far its peak RSS had grown after each, in MiB. VmHWM, not ru_maxrss: that
    would start at this process's size, inherited through fork."""
    script = (
        "import sys, threading\n" + setup +
        "import eurosat_service.adapters.torch_classifier\n"
        "from eurosat_service.adapters.preprocessing import decode_rgb\n"
        "def peak_kib():\n"
        "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "data = sys.stdin.buffer.read()\n"
        "before = peak_kib()\n"
        + "".join(f"{step}\nprint((peak_kib() - before) // 1024)\n" for step in steps)
    )
    done = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=280)
    assert done.returncode == 0, done.stderr.decode()
    return [int(line) for line in done.stdout.split()]


@pytest.mark.timeout(300)
def test_decoding_a_large_16_bit_png_never_holds_converted_full_size_copies() -> None:
    """A 4096x4096 16-bit PNG (42 KB, within the pixel limit) raised the peak RSS by 176 MiB per
    decode when converted at full size; two workers decoding at once could take a 512 MB task
    over its limit."""
    ramp = Image.linear_gradient("L").resize((4096, 4096)).convert("I").point(lambda v: v * 200).convert("I;16")
    png = encoded(ramp, "PNG")  # made here: building it in the child would raise the peak first
    [grown] = peak_rss_growth_mib(png, ["assert decode_rgb(data).shape == (3, 64, 64)"])
    assert grown <= 64, f"the peak RSS grew by {grown} MiB decoding one 4096x4096 16-bit PNG"


@pytest.mark.timeout(300)
def test_large_images_are_decoded_one_at_a_time_across_threads() -> None:
    """Each inference worker decodes its own batch: two 4096x4096 RGBA PNGs decoded side by side
    held two images' worth of memory at once (about 128 MiB each). Two threads, three each, with
    the service's malloc settings (one arena: with one per thread, each would keep its own)."""
    g = Image.linear_gradient("L").resize((4096, 4096))
    png = encoded(Image.merge("RGBA", (g, g.rotate(90), g, g)), "PNG")
    one, both = peak_rss_growth_mib(png, [
        "decode_rgb(data)",
        "threads = [threading.Thread(target=lambda: [decode_rgb(data) for _ in range(3)]) for _ in range(2)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]",
    ], setup=("from eurosat_service.adapters.glibc_malloc import keep_freed_memory, limit_malloc_arenas\n"
              "limit_malloc_arenas(1); keep_freed_memory()  # as the service starts\n"))
    assert one >= 64  # the decoded image alone is 64 MiB: the measurement sees it
    assert both <= one + 32, f"one decode raised the peak RSS by {one} MiB, two threads by {both}"
