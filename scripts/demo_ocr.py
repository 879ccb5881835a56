#!/usr/bin/env python3
"""The main job's real-model part: PP-OCRv4's text recognizer (pretrained weights as published in
RapidOCR's wheel on PyPI) deployed on tract by the rdeploy binary, run on an image of text
rendered here, and its output decoded to the text it reads.

Python is used only around rdeploy: to fetch the model (pip download, no dependencies), to
draw the image and write it as .npy, and to decode the output with the character list the
model carries. The model runs in the rdeploy binary.
Usage: .venv/bin/python scripts/demo_ocr.py RDEPLOY_BINARY [TEXT]
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def model_file():
    """PP-OCRv4 rec from tests/data/generated/realworld, fetched there if missing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "prep", os.path.join(ROOT, "scripts", "prepare-test-data.py"))
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    dst = os.path.join(ROOT, "tests", "data", "generated", "realworld")
    if not prep.fetch_realworld(dst):
        raise SystemExit("cannot download the model (pip download rapidocr-onnxruntime)")
    return os.path.join(dst, "ppocr-rec.onnx")


def render(text, path_png):
    """Black text on white, 48 px high as PP-OCR's recognizer expects."""
    font = ImageFont.load_default(size=30)
    w = int(font.getlength(text)) + 24
    img = Image.new("RGB", (w, 48), "white")
    ImageDraw.Draw(img).text((12, 6), text, fill="black", font=font)
    img.save(path_png)
    return img


def preprocess(img):
    """PP-OCR rec preprocessing: RGB->BGR, height 48, (x / 255 - 0.5) / 0.5, NCHW float32."""
    a = np.asarray(img, dtype=np.float32)[:, :, ::-1]
    a = (a / 255.0 - 0.5) / 0.5
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def decode(probs, characters):
    """CTC greedy decoding: best class per step, repeats merged, blanks (0) dropped."""
    best = probs[0].argmax(-1)
    out, prev = [], 0
    for i in best:
        if i != prev and i != 0:
            out.append(characters[i])
        prev = i
    return "".join(out)


def main():
    rd = sys.argv[1]
    text = sys.argv[2] if len(sys.argv) > 2 else "rdeploy 2026"
    work = os.path.join(ROOT, "work", "ocr")
    os.makedirs(work, exist_ok=True)
    model = model_file()
    meta = {p.key: p.value for p in onnx.load(model, load_external_data=False).metadata_props}
    characters = ["blank"] + meta["character"].splitlines() + [" "]
    png = os.path.join(work, "text.png")
    x = preprocess(render(text, png))
    np.save(os.path.join(work, "text.npy"), x)
    run = lambda *a: subprocess.run([rd, *a], check=True)  # noqa: E731
    run("deploy", os.path.join(ROOT, "configs", "onnx", "generic_tract.py"), model,
        "--work-dir", os.path.join(work, "w"))
    run("infer", os.path.join(work, "w"), "--input", f"x={os.path.join(work, 'text.npy')}",
        "--output-dir", os.path.join(work, "out"))
    outs = [f for f in os.listdir(os.path.join(work, "out")) if f.endswith(".npy")]
    probs = np.load(os.path.join(work, "out", outs[0]))
    read = decode(probs, characters)
    print(f"\nimage {png} shows: {text!r}")
    print(f"PP-OCRv4 on tract (rdeploy) reads: {read!r}")
    if read.replace(" ", "") != text.replace(" ", ""):
        raise SystemExit("the text read differs from the text drawn")


if __name__ == "__main__":
    main()
