"""Image sources -> one in-memory uint8 tensor (N, C, H, W) with optional labels.

Sources: IDX files (MNIST / Fashion-MNIST, gzipped or not; the labels file beside the images file is found
by name), folders of images (a subfolder per class, or flat and unlabelled), numpy `.npy` / `.npz`, and
Hugging Face datasets (a `save_to_disk` folder or a hub id) with an image column. Images are decoded once
with PIL, resized (shorter side, then centre crop) to `load_size` when they differ in size, and kept as
uint8: 60,000 Fashion-MNIST images are 47 MB, and batched augmentation (vision.py) then runs on tensors.
Unreadable images are skipped with a count and the first paths named, or raise when `strict`.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from warmstart.data.sources import looks_like_hub_id
from warmstart.errors import WarmstartError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class ImageSet:
    """images: (N, C, H, W) uint8; labels: (N,) int64 or None; class_names[i] names label i."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable files (strict=False)
    paths: list[str] = field(default_factory=list)  # the file of each image, for folder sources
    whole: ImageSet | None = None  # a labelled sample: the set it was drawn from (channel statistics, forgetting)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], None if self.labels is None else self.labels[index], self.class_names)


# ---------------------------------------------------------------- IDX
def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: zero bytes, a dtype code, the number of dims, big-endian dims)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise WarmstartError(f"{path}: cannot read IDX file ({e}); re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise WarmstartError(f"{path}: not an IDX file (bad magic number); expected MNIST-style idx3/idx1 data")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise WarmstartError(f"{path}: IDX header promises {need:,} bytes of data, the file has {len(body):,}; "
                             "the file is truncated or corrupt")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _idx_labels_path(images: Path) -> Path | None:
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if a in images.name:
            candidate = images.with_name(images.name.replace(a, b))
            if candidate.is_file():
                return candidate
    return None


def load_idx(path: Path) -> ImageSet:
    array = read_idx(path)
    if array.ndim == 3:
        array = array[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif array.ndim != 4:
        raise WarmstartError(f"{path}: an IDX image file has 3 or 4 dimensions, this one has {array.ndim}")
    labels = None
    label_path = _idx_labels_path(path)
    if label_path is not None:
        labels = read_idx(label_path).astype(np.int64)
        if labels.shape != (len(array),):
            raise WarmstartError(f"{label_path}: {labels.shape[0]} labels for {len(array)} images in {path.name}")
    images = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy of the read-only buffer
    return ImageSet(images, None if labels is None else torch.from_numpy(labels))


# ---------------------------------------------------------------- files and folders
def decode_image(path: Path, mode: str, load_size: int | None):
    """-> (C, H, W) uint8 array; raises OSError/ValueError for unreadable files."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        im = im.convert(mode)
    if load_size and im.size != (load_size, load_size):
        im = ImageOps.fit(im, (load_size, load_size), Image.Resampling.BILINEAR)  # shorter side, centre crop
    array = np.asarray(im, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _colour_mode(paths: list[Path]) -> str:
    """L when every sampled image is greyscale, else RGB (sampling keeps this fast on big folders)."""
    from PIL import Image

    for p in paths[:: max(1, len(paths) // 200)]:
        try:
            with Image.open(p) as im:
                if im.mode not in ("L", "1", "I", "I;16", "F", "LA"):
                    return "RGB"
        except (OSError, ValueError):
            continue
    return "L"


def load_folder(root: Path, load_size: int | None, strict: bool) -> ImageSet:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise WarmstartError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    subfolders = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    labelled = bool(subfolders) and all(len(p.relative_to(root).parts) > 1 for p in files)
    mode = _colour_mode(files)
    arrays, labels, skipped, sizes, kept = [], [], [], set(), []
    for p in files:
        try:
            a = decode_image(p, mode, load_size)
        except (OSError, ValueError, SyntaxError) as e:
            if strict:
                raise WarmstartError(f"{p}: unreadable image ({type(e).__name__}); remove it or set "
                                     "data.strict=false to skip unreadable images") from None
            skipped.append(str(p))
            continue
        arrays.append(a)
        kept.append(str(p))
        sizes.add(a.shape)
        if labelled:
            labels.append(subfolders.index(p.relative_to(root).parts[0]))
    if not arrays:
        raise WarmstartError(f"{root}: none of the {len(files)} image files could be read")
    if len(sizes) > 1:
        raise WarmstartError(f"{root}: images differ in size ({', '.join(map(str, sorted(sizes)[:3]))}…); "
                             "set data.load_size to resize them to one size")
    images = torch.from_numpy(np.stack(arrays))
    return ImageSet(images, torch.tensor(labels) if labelled else None, subfolders if labelled else [], skipped, kept)


def load_numpy(path: Path) -> ImageSet:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise WarmstartError(f"{path}: cannot read numpy file ({str(e).splitlines()[0]})") from None
    labels = None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = set(data.files)
        image_key = next((k for k in ("images", "x", "X", "data") if k in keys), None)
        if image_key is None:
            raise WarmstartError(f"{path}: no 'images' (or x/data) array; it holds {', '.join(sorted(keys))}")
        label_key = next((k for k in ("labels", "y", "Y", "targets") if k in keys), None)
        labels = data[label_key] if label_key else None
        data = data[image_key]
    array = np.asarray(data)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if array.ndim != 4:
        raise WarmstartError(f"{path}: expected images as (N, H, W), (N, H, W, C) or (N, C, H, W); got {array.shape}")
    if array.dtype != np.uint8:
        if array.max(initial=0) <= 1.0 and np.issubdtype(array.dtype, np.floating):
            array = array * 255.0
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if labels is not None and len(labels) != len(array):
        raise WarmstartError(f"{path}: {len(labels)} labels for {len(array)} images")
    return ImageSet(torch.from_numpy(np.ascontiguousarray(array)),
                    None if labels is None else torch.from_numpy(np.asarray(labels).astype(np.int64)))


def load_hf_images(source: str, image_column: str, label_column: str | None, split: str,
                   load_size: int | None, strict: bool) -> ImageSet:
    """A `save_to_disk` folder or a hub id (`hub:` prefix or owner/name) with a PIL image column."""
    import datasets

    try:
        if Path(source).is_dir():
            ds = datasets.load_from_disk(source)
        else:
            ds = datasets.load_dataset(source.removeprefix("hub:"), split=split)
    except (FileNotFoundError, ValueError, ConnectionError) as e:
        raise WarmstartError(f"{source}: cannot load dataset ({str(e).splitlines()[0]})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise WarmstartError(f"{source}: no split '{split}' (splits: {', '.join(ds)})")
        ds = ds[split]
    if image_column not in ds.column_names:
        raise WarmstartError(f"{source}: no column '{image_column}' (columns: {', '.join(ds.column_names)}); "
                             "set data.image_column")
    has_labels = label_column is not None and label_column in ds.column_names
    mode = None
    arrays, labels, skipped = [], [], []
    for i, row in enumerate(ds):
        im = row[image_column]
        try:
            mode = mode or ("L" if im.mode in ("L", "1", "I", "F") else "RGB")
            im = im.convert(mode)
            if load_size:
                from PIL import Image, ImageOps

                im = ImageOps.fit(im, (load_size, load_size), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError, AttributeError) as e:
            if strict:
                raise WarmstartError(f"{source}: row {i}: unreadable image ({type(e).__name__})") from None
            skipped.append(f"{source}[{i}]")
            continue
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        if has_labels:
            labels.append(int(row[label_column]))
    if not arrays:
        raise WarmstartError(f"{source}: no readable images in column '{image_column}'")
    if len({a.shape for a in arrays}) > 1:
        raise WarmstartError(f"{source}: images differ in size; set data.load_size to resize them to one size")
    names = []
    feature = ds.features.get(label_column) if has_labels else None
    if feature is not None and hasattr(feature, "names"):
        names = list(feature.names)
    return ImageSet(torch.from_numpy(np.stack(arrays)), torch.tensor(labels) if has_labels else None, names, skipped)


def load_images(sources: list[str], load_size: int | None = None, strict: bool = False,
                image_column: str = "image", label_column: str | None = "label", split: str = "train") -> ImageSet:
    """Load and concatenate every source. Labels are kept only when every source has them."""
    if not sources:
        raise WarmstartError("data.sources is empty; give image folders, IDX/.npy/.npz files or a dataset id")
    parts = []
    for source in sources:
        path = Path(source)
        if path.is_dir() and not (path / "dataset_info.json").exists() and not (path / "state.json").exists() \
                and not (path / "dataset_dict.json").exists():
            part = load_folder(path, load_size, strict)
        elif path.is_dir():
            part = load_hf_images(source, image_column, label_column, split, load_size, strict)
        elif path.is_file() and ("idx" in path.name or path.suffix in (".idx",)):
            part = load_idx(path)
        elif path.is_file() and path.suffix in (".npy", ".npz"):
            part = load_numpy(path)
        elif path.exists():
            raise WarmstartError(f"{source}: unknown image source; use a folder of images, an IDX file, "
                                 ".npy/.npz, or a Hugging Face dataset")
        elif looks_like_hub_id(source) and "/" in source or source.startswith("hub:"):
            part = load_hf_images(source, image_column, label_column, split, load_size, strict)
        else:
            raise WarmstartError(f"{source}: no such file or folder")
        parts.append(part)
    shapes = {tuple(p.images.shape[1:]) for p in parts}
    if len(shapes) > 1:
        raise WarmstartError(f"image sources differ in shape {sorted(shapes)}; set data.load_size to resize them")
    skipped = [s for p in parts for s in p.skipped]
    if skipped:
        print(f"warmstart: skipped {len(skipped)} unreadable image(s), e.g. {', '.join(skipped[:3])}")
    labelled = all(p.labels is not None for p in parts)
    paths = [path for source, p in zip(sources, parts, strict=True)
             for path in (p.paths or [f"{source}[{i}]" for i in range(len(p))])]
    return ImageSet(torch.cat([p.images for p in parts]),
                    torch.cat([p.labels for p in parts]) if labelled else None,
                    parts[0].class_names if labelled and len(parts) == 1 else [], skipped, paths)


def image_batches(images: torch.Tensor, batch_size: int, seed: int, epoch: int = 0, index: int = 0):
    """Endless shuffled batches, resumable at (epoch, index): each epoch's order comes from `seed + epoch`.
    Yields (epoch, index, {"images": (B, C, H, W) uint8}); the last partial batch of an epoch is dropped."""
    n = len(images)
    if n < batch_size:
        raise WarmstartError(f"{n} images is fewer than train.batch_size={batch_size}; lower the batch size")
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(index, n // batch_size):
            yield epoch, i, {"images": images[order[i * batch_size:(i + 1) * batch_size]]}
        epoch, index = epoch + 1, 0
