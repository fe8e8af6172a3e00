"""Invisible watermark: stock parity, the corrected dwtDct encoder, size rules, every method round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from imwatermark import WatermarkDecoder, WatermarkEncoder
from imwatermark.maxDct import EmbedMaxDct
from PIL import Image
from skimage import data

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate import watermark as wm


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """512x512: SD's output size, where dwtDct reads back every bit (it does not on every image)."""
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def small_photo(photo: Image.Image) -> Image.Image:
    return photo.resize((256, 256), Image.Resampling.LANCZOS)


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _u_bands(image: Image.Image) -> tuple[np.ndarray, ...]:
    import cv2
    import pywt

    u = cv2.cvtColor(_bgr(image), cv2.COLOR_BGR2YUV)[:, :, 1].astype(np.float64)
    ll, (h, v, d) = pywt.dwt2(u, "haar")
    return ll, h, v, d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_embedding_equals_stock_encode_frame(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ll = rng.normal(0, 200, (40, 44)) * (rng.random((40, 44)) > 0.3)  # zeros give argmax ties
    bits = wm._payload_bits(wm.DEFAULT_PAYLOAD)
    stock = ll.copy()
    EmbedMaxDct(list(bits), wmLen=len(bits), scales=[0, 36, 36]).encode_frame(stock, 36)
    assert np.array_equal(wm._embed_bands(ll, bits, 36), stock)


def test_dwtdct_is_exactly_sds_put_watermark(photo: Image.Image) -> None:
    """scripts/txt2img.py: RGB->BGR, WatermarkEncoder bytes 'StableDiffusionV1', encode 'dwtDct', BGR->RGB."""
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", b"StableDiffusionV1")
    expected = Image.fromarray(encoder.encode(_bgr(photo), "dwtDct")[:, :, ::-1])
    assert np.array_equal(np.asarray(wm.embed(photo)), np.asarray(expected))


@pytest.mark.parametrize("method", ["dwtDct", "dwtDctFixed"])
def test_stock_decoder_reads_both_dwtdct_encoders(photo: Image.Image, method: str) -> None:
    marked = wm.embed(photo, method)
    assert WatermarkDecoder("bytes", 136).decode(_bgr(marked), "dwtDct") == b"StableDiffusionV1"
    assert wm.decode(marked, method) == wm.DEFAULT_PAYLOAD


def test_fixed_encoder_keeps_detail_bands_in_place(small_photo: Image.Image) -> None:
    _, h0, v0, _ = _u_bands(small_photo)
    _, h_stock, v_stock, _ = _u_bands(wm.embed(small_photo, "dwtDct"))
    _, h_fixed, v_fixed, _ = _u_bands(wm.embed(small_photo, "dwtDctFixed"))
    err_stock = np.abs(h_stock - h0).mean() + np.abs(v_stock - v0).mean()
    err_fixed = np.abs(h_fixed - h0).mean() + np.abs(v_fixed - v0).mean()
    assert err_fixed < err_stock / 2


def test_fixed_encoder_has_higher_psnr(photo: Image.Image) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    ref = np.asarray(photo)
    stock = peak_signal_noise_ratio(ref, np.asarray(wm.embed(photo, "dwtDct")))
    fixed = peak_signal_noise_ratio(ref, np.asarray(wm.embed(photo, "dwtDctFixed")))
    assert fixed > stock


def test_custom_payload_and_bits(photo: Image.Image) -> None:
    marked = wm.embed(photo, "dwtDctFixed", payload=b"t2i")
    bits = wm.decode_bits(marked, "dwtDctFixed", 24)
    assert bits.dtype == np.uint8 and bits.shape == (24,) and set(np.unique(bits)) <= {0, 1}
    assert np.array_equal(bits, np.unpackbits(np.frombuffer(b"t2i", dtype=np.uint8)))
    assert wm.decode(marked, "dwtDctFixed", 24) == b"t2i"


def test_dwtdctsvd_round_trip(photo: Image.Image) -> None:
    assert wm.decode(wm.embed(photo, "dwtDctSvd"), "dwtDctSvd") == wm.DEFAULT_PAYLOAD


def test_rivagan_round_trip_offline(small_photo: Image.Image) -> None:
    payload = wm.default_payload("rivaGan")
    marked = wm.embed(small_photo, "rivaGan", payload)
    assert wm.decode(marked, "rivaGan", 32) == payload


def test_rivagan_refuses_a_payload_that_is_not_32_bits(photo: Image.Image) -> None:
    with pytest.raises(ConfigError, match="32 bits"):
        wm.embed(photo, "rivaGan")
    with pytest.raises(ConfigError, match="32 bits"):
        wm.decode_bits(photo, "rivaGan", 136)


@pytest.mark.parametrize("method", [m for m in wm.METHODS if m not in wm.LATENT_METHODS])
def test_min_size_is_the_accepted_square(method: str) -> None:
    side = wm.min_size(method)
    assert side == 256
    with pytest.raises(ConfigError, match=f"{side - 1}x{side - 1}"):
        wm.embed(Image.new("RGB", (side - 1, side - 1)), method, wm.default_payload(method))


def test_size_rule_is_area_like_imwatermark() -> None:
    tall = Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 128, 3), dtype=np.uint8))
    assert wm.embed(tall, "dwtDctFixed").size == (128, 512)


def test_world_sized_image_upscaled_to_min_size_round_trips() -> None:
    """The pipeline's path: a 64x64 output upscaled x4 (nearest) to 256x256.

    dwtDctSvd reads it back; dwtDct (stock and fixed) does not on smooth upscaled images, because
    its decoder re-picks the block's largest coefficient and quantisation can change which one that is.
    """
    yy, xx = np.mgrid[0:64, 0:64]
    small = np.stack([xx * 3 + 30, yy * 2 + 60, (xx + yy) + 40], axis=-1).astype(np.uint8)
    small[20:40, 16:48] = (200, 60, 50)
    big = Image.fromarray(small).resize((256, 256), Image.Resampling.NEAREST)
    assert wm.decode(wm.embed(big, "dwtDctSvd"), "dwtDctSvd") == wm.DEFAULT_PAYLOAD


def test_decode_of_a_small_image_is_a_data_error() -> None:
    with pytest.raises(DataError, match="64x64"):
        wm.decode(Image.new("RGB", (64, 64)))


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="dwtDctFixed"):
        wm.min_size("lsb")


def test_rgba_input_gives_rgb_output_of_same_size(photo: Image.Image) -> None:
    out = wm.embed(photo.convert("RGBA"), "dwtDctFixed")
    assert out.mode == "RGB" and out.size == photo.size


def test_a_latent_mark_takes_any_size_and_leaves_pixels_alone() -> None:
    """Tree-Ring marks the initial noise, not the pixels: any image size, ``embed`` is the identity."""
    assert wm.LATENT_METHODS == ("treering",) and wm.min_size("treering") == 1
    image = Image.new("RGB", (3, 2), (10, 20, 30))
    assert wm.embed(image, "treering", wm.default_payload("treering")).tobytes() == image.tobytes()
