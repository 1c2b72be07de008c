"""Dataset layouts the pipeline reads (`data.layout`), and the one vocabulary of rejected files.

ImageExampleGen (components/image_listing.py) lists them and `data/prepare_dataset.py` writes and
checks them; both take the names, the CelebA partition format and the GOPRO pairing rule from here.

  folder  every non-hidden file below the root, recursively; split by a hash of the id.
  celeba  `img_align_celeba/*`; splits from `list_eval_partition.txt` (0 train, 1 eval, 2 test) when
          present, else by a hash of the id.
  gopro   `{train,test}/<scene>/{blur,sharp}/*`, blur and sharp frames paired by scene and file stem;
          train/ -> train, test/ -> eval. Other folders (GOPRO_Large's `blur_gamma`) are ignored. A
          scene with `sharp/` and no `blur/` folder holds sharp-only frames, which Transform blurs
          synthetically: real pairs and synthetic blur in one data set (DeblurGAN's combined set).
"""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, Iterable, List, Tuple

TRAIN, EVAL, TEST = "train", "eval", "test"

CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_PARTITION_CSV = "list_eval_partition.csv"  # Kaggle's copy of the same file
CELEBA_SPLITS = {0: TRAIN, 1: EVAL, 2: TEST}  # partition codes
GOPRO_SPLITS = {"train": TRAIN, "test": EVAL}  # folder -> split
GOPRO_FRAMES = ("blur", "sharp")

# Extensions of files taken for images where a folder is searched by name (evaluate, predict,
# tiles). Ingestion itself recognises images by content.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# Why a file (or a GOPRO pair) is not used: counted (Beam counter `rejected_<reason>`), listed in
# rejects.tsv by ingestion and in the summary of `prepare_dataset.py`.
REASONS = {
    "empty": "zero bytes",
    "not_image": "no image format recognised (text, archives, ...)",
    "corrupt": "recognised, but the pixel data does not decode",
    "truncated": "the file ends before the pixel data does",
    "too_small": "shorter side below data.min_size (0: the crop size)",
    "too_large": "more pixels than data.max_pixels, judged from the header before decoding",
    "unpaired": "GOPRO blur frame without its sharp frame, or the reverse",
    "size_mismatch": "GOPRO blur and sharp frames of different sizes",
    "unpartitioned": "CelebA image missing from list_eval_partition.txt",
    "duplicate_id": "two files map to one id (a.png and a.jpg in one folder)",
    "unreadable": "the file system refused to read it (permissions, I/O error, gone since the listing)",
    "not_a_file": "not a regular file: a FIFO, a socket, a device (never opened)",
    "symlink_loop": "a symbolic link that never resolves, or a folder link back to a folder above it",
    "dangling_symlink": "a symbolic link to nothing",
    "bad_name": "a file name that is not valid UTF-8 (no id can be made of it)",
}


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def parse_partition(text: str, origin: str = CELEBA_PARTITION) -> Dict[str, str]:
    """CelebA's `list_eval_partition.txt` ("000001.jpg 0" per line) or Kaggle's .csv ("image_id,partition")
    as {file name: split}. A malformed file is an error with its line number (it would silently move
    images between splits), as is a file listed in two splits."""
    lines = text.splitlines()
    if lines and lines[0].replace(" ", "").lower().startswith("image_id,"):
        rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), 1) if n > 1 and row]
    else:
        rows = [(n, line.split()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise ValueError(f"{origin}: empty partition file")
    out: Dict[str, str] = {}
    for n, parts in rows:
        code = parts[1].strip() if len(parts) == 2 else ""
        if not code.isdigit() or int(code) not in CELEBA_SPLITS:
            raise ValueError(f"{origin}:{n}: expected '<image>.jpg <0|1|2>' as in CelebA's {CELEBA_PARTITION}, "
                             f"got {' '.join(parts)!r}")
        name, split = parts[0].strip(), CELEBA_SPLITS[int(code)]
        if out.get(name, split) != split:
            raise ValueError(f"{origin}:{n}: {name} is listed in two different splits")
        out[name] = split
    return out


def sharp_only_scene(folders) -> bool:
    """A GOPRO-layout scene whose frames are all sharp: a `sharp/` folder and no `blur/` folder."""
    return "sharp" in folders and "blur" not in folders


def pair_frames(blur: Iterable[str], sharp: Iterable[str]) -> Tuple[List[Tuple[str, str, str]], List[Tuple[str, str]]]:
    """GOPRO pairing of one scene's frames (file names) by stem: ([(stem, blur, sharp)], [(kind, unpaired
    name)]), both sorted."""
    by_stem = {kind: {os.path.splitext(n)[0]: n for n in names} for kind, names in (("blur", blur), ("sharp", sharp))}
    pairs, unpaired = [], []
    for stem in sorted(set(by_stem["blur"]) | set(by_stem["sharp"])):
        b, s = by_stem["blur"].get(stem), by_stem["sharp"].get(stem)
        if b and s:
            pairs.append((stem, b, s))
        else:
            unpaired.append(("blur", b) if b else ("sharp", s))
    return pairs, unpaired
