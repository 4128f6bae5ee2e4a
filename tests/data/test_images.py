
import numpy as np
import pytest
import torch
from conftest import write_idx
from PIL import Image

from warmstart.data.images import image_batches, load_images, read_idx
from warmstart.errors import WarmstartError


@pytest.fixture
def idx_pair(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 3
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    return tmp_path / "train-images-idx3-ubyte.gz", images, labels


def test_idx_images_and_their_labels_file(idx_pair):
    path, images, labels = idx_pair
    data = load_images([str(path)])
    assert data.images.shape == (12, 1, 28, 28) and data.images.dtype == torch.uint8
    assert np.array_equal(data.images[:, 0].numpy(), images) and np.array_equal(data.labels.numpy(), labels)


def test_truncated_idx_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 5, 5)), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WarmstartError, match="truncated"):
        read_idx(path)
    (tmp_path / "junk-images-idx3").write_bytes(b"\xff\xd8not idx")
    with pytest.raises(WarmstartError, match="not an IDX file"):
        load_images([str(tmp_path / "junk-images-idx3")])


def _folder(tmp_path, sizes=((20, 20),) * 6, mode="L"):
    root = tmp_path / "imgs"
    for i, size in enumerate(sizes):
        cls = root / ("cat" if i % 2 else "dog")
        cls.mkdir(parents=True, exist_ok=True)
        Image.new(mode, size, color=i * 20 if mode == "L" else (i * 20, 0, 0)).save(cls / f"{i}.png")
    return root


def test_class_subfolders_give_labels(tmp_path):
    data = load_images([str(_folder(tmp_path))])
    assert data.images.shape == (6, 1, 20, 20) and data.class_names == ["cat", "dog"]
    assert sorted(data.labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_colour_images_keep_three_channels(tmp_path):
    assert load_images([str(_folder(tmp_path, mode="RGB"))]).images.shape[1] == 3


def test_corrupt_image_is_skipped_and_named_or_an_error_when_strict(tmp_path, capsys):
    root = _folder(tmp_path)
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    data = load_images([str(root)])
    assert len(data) == 6 and data.skipped == [str(root / "cat" / "broken.png")]
    assert "skipped 1 unreadable image" in capsys.readouterr().out
    with pytest.raises(WarmstartError, match="broken.png: unreadable image"):
        load_images([str(root)], strict=True)


def test_mixed_sizes_need_load_size(tmp_path):
    root = _folder(tmp_path, sizes=[(20, 20), (30, 24), (20, 20), (16, 40)])
    with pytest.raises(WarmstartError, match="data.load_size"):
        load_images([str(root)])
    assert load_images([str(root)], load_size=16).images.shape == (4, 1, 16, 16)


def test_numpy_sources(tmp_path):
    x = np.random.default_rng(0).random((5, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", images=x, labels=np.array([0, 1, 0, 1, 2]))
    data = load_images([str(tmp_path / "d.npz")])
    assert data.images.shape == (5, 3, 8, 8) and data.labels.tolist() == [0, 1, 0, 1, 2]
    np.save(tmp_path / "u.npy", (x[..., 0] * 255).astype(np.uint8))
    assert load_images([str(tmp_path / "u.npy")]).labels is None
    np.savez(tmp_path / "w.npz", pixels=x)
    with pytest.raises(WarmstartError, match="no 'images'"):
        load_images([str(tmp_path / "w.npz")])


def test_hf_dataset_with_an_image_column(tmp_path):
    import datasets

    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"img": [Image.new("L", (10, 10), color=i * 40) for i in range(4)],
                                     "label": [0, 1, 1, 0]}, features=features)
    ds.save_to_disk(tmp_path / "ds")
    data = load_images([str(tmp_path / "ds")], image_column="img")
    assert data.images.shape == (4, 1, 10, 10) and data.class_names == ["a", "b"] and data.labels.tolist() == [0, 1, 1, 0]
    with pytest.raises(WarmstartError, match="no column 'image'"):
        load_images([str(tmp_path / "ds")])


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(WarmstartError, match="no such file"):
        load_images([str(tmp_path / "nope.npy")])
    with pytest.raises(WarmstartError, match="no such file"):  # a relative path, not a hub id: no download tried
        load_images(["data/train/images"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmstartError, match="no image files"):
        load_images([str(tmp_path / "empty")])
    with pytest.raises(WarmstartError, match="data.sources is empty"):
        load_images([])


def test_image_batches_resume_where_they_stopped():
    images = torch.arange(10).view(10, 1, 1, 1)
    full = image_batches(images, 3, seed=0)
    seen = [next(full) for _ in range(7)]  # 3 batches per epoch: into the third epoch
    resumed = image_batches(images, 3, seed=0, epoch=seen[4][0], index=seen[4][1])
    for expected in seen[4:]:
        got = next(resumed)
        assert got[:2] == expected[:2] and torch.equal(got[2]["images"], expected[2]["images"])


def _corrupt_folder(p):
    p.mkdir()
    Image.new("L", (8, 8)).save(p / "ok.png")
    (p / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")


def _mixed_folder(p):
    p.mkdir()
    Image.new("L", (8, 8)).save(p / "a.png")
    Image.new("L", (9, 8)).save(p / "b.png")


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file or folder"),
    (lambda p: p.mkdir(), "no image files"),
    (_corrupt_folder, "bad.jpg: unreadable image"),
    (_mixed_folder, "differ in size"),
])
def test_bad_image_input_is_one_clear_line(tmp_path, make, message):
    path = tmp_path / "images"
    make(path)
    with pytest.raises(WarmstartError, match=message) as e:
        load_images([str(path)], strict=True)
    assert "images" in str(e.value) and "\n" not in str(e.value)


def test_corrupt_numpy_file_names_the_file(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(WarmstartError, match="x.npy: cannot read numpy file"):
        load_images([str(tmp_path / "x.npy")])
