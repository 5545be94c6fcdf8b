"""The gradio Space (space/app.py): driven in headless Chromium, called through gradio_client, fed bad uploads."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, load_script
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from kr_lpr import TinyLPRImageProcessor, TinyLPRModel

app = load_script("space/app.py")

CHROMIUM = "/usr/bin/chromium"  # Debian's build (`make browser`), never a downloaded one
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
EXAMPLES = sorted((REPO_ROOT / "space" / "examples").glob("*.png"))
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def predict(model_dir: Path, image) -> dict:
    """The reading the model itself gives, computed without the app."""
    model, processor = TinyLPRModel.from_pretrained(model_dir).eval(), TinyLPRImageProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        return processor.post_process(model(**processor(images=image, return_tensors="pt")))[0]


@pytest.fixture(scope="module")
def space(random_model_dir):
    demo = app.build_demo(app.PlateReader(str(random_model_dir)))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, **app.LAUNCH_OPTIONS)
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def client(space) -> Client:
    return Client(space.local_url, verbose=False)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    files = {"crop": folder / "crop.jpg", "not_image": folder / "notes.png", "empty": folder / "empty.png",
             "huge_pixels": folder / "huge.png", "huge_file": folder / "huge_file.png",
             "html_name": folder / "<b>plate<b>.png", "bomb": folder / "bomb.png"}  # fmt: skip
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 260, 3), dtype=np.uint8)).save(files["crop"])
    files["not_image"].write_text("these are my notes, not a plate")
    files["html_name"].write_text("not a plate either")
    files["empty"].write_bytes(b"")
    Image.new("L", (10_000, 6_000)).save(files["huge_pixels"])  # 60 MP in a small file
    Image.new("1", (20_000, 10_000)).save(files["bomb"])  # 200 MP: Pillow's decompression-bomb guard
    files["huge_file"].write_bytes(np.random.default_rng(1).bytes(11 * 1024 * 1024))
    return files


@pytest.fixture(scope="module")
def page(space):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(space.local_url)
        yield page
        browser.close()


def shown(page) -> dict[str, str]:
    return {name: page.locator(f"#plate-{name} textarea").input_value() for name in ("text", "confidence", "format")}


def test_browser_upload_shows_the_models_reading(page, uploads, random_model_dir, tmp_path):
    expected = predict(random_model_dir, str(uploads["crop"]))
    assert expected["text"], "the fixture model should read something"
    page.locator("input[type=file]").first.set_input_files(str(uploads["crop"]))
    expect(page.locator("#plate-text textarea")).to_have_value(expected["text"])
    assert shown(page) == {"text": expected["text"], "confidence": f"{expected['confidence']:.4f}",
                           "format": app.format_verdict(expected)}  # fmt: skip
    # The model input, all characters together, then one attention map per character.
    expect(page.locator("#attention .thumbnail-item img, #attention img")).not_to_have_count(0)
    captions = page.locator("#attention").inner_text()
    assert "model input" in captions and "all characters" in captions
    characters = TinyLPRImageProcessor().label_map.split(expected["text"])
    for position, character in enumerate(characters, start=1):
        assert f"{position}: {character}" in captions
    page.screenshot(path=tmp_path / "space.png", full_page=True)
    assert (tmp_path / "space.png").stat().st_size > 10_000


def test_browser_example_click_reads_the_example(page, random_model_dir, tmp_path):
    example = EXAMPLES[2]
    page.locator(f"img[src$='{example.name}']").first.click()
    expected = predict(random_model_dir, str(example))
    expect(page.locator("#plate-text textarea")).to_have_value(expected["text"])
    assert shown(page)["confidence"] == f"{expected['confidence']:.4f}"
    page.screenshot(path=tmp_path / "space-example.png", full_page=True)


def test_browser_bad_upload_shows_a_friendly_message(page, uploads, tmp_path):
    page.locator("input[type=file]").first.set_input_files(str(uploads["not_image"]))
    toast = page.get_by_text("Cannot read image notes.png", exact=False).first
    expect(toast).to_be_visible()
    page.screenshot(path=tmp_path / "space-bad-upload.png", full_page=True)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "/tmp/" not in body


def test_browser_escapes_file_names_in_messages(page, uploads):
    page.locator("input[type=file]").first.set_input_files(str(uploads["html_name"]))
    toast = page.get_by_text("Cannot read image <b>plate<b>.png", exact=False).first
    expect(toast).to_be_visible()  # shown as text: as HTML, the tags would be gone from the text


def test_browser_batch_tab_reads_every_file(page, uploads, random_model_dir):
    page.get_by_role("tab", name="Batch").click()
    page.locator("input[type=file][multiple]").set_input_files([str(EXAMPLES[1]), str(uploads["not_image"])])
    page.get_by_role("button", name="Read all").click()
    table = page.get_by_label("Readings")
    expect(table).to_contain_text("Cannot read image notes.png")
    expected = predict(random_model_dir, str(EXAMPLES[1]))
    expect(table).to_contain_text(EXAMPLES[1].name)
    expect(table).to_contain_text(expected["text"])
    page.get_by_role("tab", name="Read a plate").click()


def test_api_recognize_returns_the_plate_dicts(client, uploads, random_model_dir):
    result = client.predict(handle_file(str(uploads["crop"])), api_name="/recognize")
    expected = predict(random_model_dir, str(uploads["crop"]))
    assert result == [expected]


def test_api_recognize_batch_reads_good_files_and_names_bad_ones(client, uploads, random_model_dir):
    files = [EXAMPLES[0], uploads["not_image"], uploads["crop"]]
    results = client.predict([handle_file(str(path)) for path in files], api_name="/recognize_batch")
    assert [result["file"] for result in results] == [path.name for path in files]
    for path, result in zip((files[0], files[2]), (results[0], results[2])):
        expected = predict(random_model_dir, str(path))  # read alone; the app batches, which may round differently
        assert (result["text"], result["valid"]) == (expected["text"], expected["valid"])
        assert result["char_confidences"] == pytest.approx(expected["char_confidences"], abs=1e-5)
    assert results[1]["error"].startswith("Cannot read image notes.png") and "text" not in results[1]


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ("not_image", "Cannot read image notes.png: cannot identify image file"),
        ("empty", "Image file is empty: empty.png"),
        ("huge_pixels", "Image too large (10000x6000): huge.png"),
        ("bomb", "Cannot read image bomb.png: Image size (200000000 pixels) exceeds limit"),
    ],
)
def test_api_bad_upload_gets_a_friendly_error(client, uploads, upload, message):
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(uploads[upload])), api_name="/recognize")
    assert message in str(error.value)


def test_upload_over_the_size_limit_is_refused(space, client, uploads):
    with pytest.raises(ValueError, match="exceeds the maximum file size of 10485760 bytes"):
        client.predict(handle_file(str(uploads["huge_file"])), api_name="/recognize")
    # The server refuses it too, for clients that do not check first.
    with uploads["huge_file"].open("rb") as file:
        response = httpx.post(f"{space.local_url}gradio_api/upload", files={"files": ("big.png", file, "image/png")})
    assert response.status_code == 413 and "exceeded maximum allowed size" in response.text
