"""The catalog against its references: the standard loaders' URLs and md5s, and SOURCE.md."""

import dataclasses
import inspect

import medmnist
import pytest
from torchvision import datasets

import course_utils as cu
from course_utils.catalog import DATASETS, Archive, Dataset

FOLDERS = {
    "hymenoptera": "hymenoptera_data", "imagenette": "imagenette2-160", "eurosat": "eurosat",
    "pneumoniamnist": "medmnist", "breastmnist": "medmnist", "retinamnist": "medmnist",
    "neu": "neu-surface-defects", "gtsrb": "gtsrb",
}


def test_catalog_has_every_course_data_set_in_its_mirror_folder():
    assert {name: entry.folder for name, entry in DATASETS.items()} == FOLDERS


@pytest.mark.parametrize("name", FOLDERS)
def test_every_entry_is_complete(name):
    entry = DATASETS[name]
    assert entry.name == name
    for attribute in ("title", "task", "license", "citation", "split_policy", "loader",
                      "layout", "homepage", "size"):
        assert getattr(entry, attribute), f"{name}.{attribute} is empty"
    assert entry.urls and all(u.startswith("http") for u in entry.urls)
    assert isinstance(entry.classes, list) and all(isinstance(c, str) for c in entry.classes)
    assert len(set(entry.classes)) == len(entry.classes) >= 2
    assert "train" in entry.splits
    assert entry.reader in cu.data.READERS
    assert entry.size_mb > 0
    train_n, eval_n = entry.fast_per_class
    assert 1 <= eval_n <= train_n <= 20  # fast mode must stay small
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.folder = "elsewhere"


@pytest.mark.parametrize("name", [n for n in FOLDERS if n != "neu"])
def test_every_download_is_checked(name):
    entry = DATASETS[name]
    for archive in entry.archives:
        # an md5 from the standard loader, or the shipped per-file sha256 manifest
        assert archive.md5 or entry.manifest, f"{archive.filename} has no checksum"
    assert entry.checksums


def test_md5s_and_urls_are_the_standard_loaders():
    imagenette = DATASETS["imagenette"].archives[0]
    assert (imagenette.url, imagenette.md5) == datasets.Imagenette._ARCHIVES["160px"]
    eurosat = DATASETS["eurosat"].archives[0]
    source = inspect.getsource(datasets.EuroSAT)
    assert eurosat.url in source and eurosat.md5 in source
    source = inspect.getsource(datasets.GTSRB)
    for archive in DATASETS["gtsrb"].archives:
        assert archive.filename in source and archive.md5 in source
        assert archive.url.startswith("https://sid.erda.dk/public/archives/")
    for flag in ("pneumoniamnist", "breastmnist", "retinamnist"):
        archive = DATASETS[flag].archives[0]
        assert (archive.url, archive.md5) == (medmnist.INFO[flag]["url"], medmnist.INFO[flag]["MD5"])
        assert DATASETS[flag].members == (f"{flag}.npz",)


def test_checksums_agree_with_the_mirrors_source_notes(shared_mirror):
    for entry in DATASETS.values():
        notes = (shared_mirror / entry.folder / "SOURCE.md").read_text(encoding="utf-8")
        for archive in entry.archives:
            if archive.md5:
                assert archive.md5 in notes, f"{entry.name}: {archive.md5} not in SOURCE.md"


def test_shipped_manifests_equal_the_mirrors(shared_mirror):
    shipped = {e.manifest: e.folder for e in DATASETS.values() if e.manifest}
    assert set(shipped) == {"hymenoptera_data.sha256", "medmnist.sha256"}
    for manifest, folder in shipped.items():
        ours = cu.data.store.read_manifest(cu.data.store.MANIFEST_DIR / manifest)
        assert ours == cu.data.store.read_manifest(shared_mirror / folder / "SHA256SUMS")
    assert len(cu.data.store.read_manifest(cu.data.store.MANIFEST_DIR / "hymenoptera_data.sha256")) == 398


def test_neu_has_no_direct_download_only_the_authors_page():
    neu = DATASETS["neu"]
    assert neu.archives == ()
    assert neu.urls == (neu.homepage,) and "neu.edu.cn" in neu.homepage


def test_class_names_follow_the_loaders_order():
    wnids = sorted(datasets.Imagenette._WNID_TO_CLASS)
    assert DATASETS["imagenette"].classes == [datasets.Imagenette._WNID_TO_CLASS[w][0] for w in wnids]
    for flag in ("pneumoniamnist", "breastmnist", "retinamnist"):
        assert len(DATASETS[flag].classes) == len(medmnist.INFO[flag]["label"])
    assert DATASETS["pneumoniamnist"].classes == ["normal", "pneumonia"]
    assert len(DATASETS["gtsrb"].classes) == 43
    assert DATASETS["gtsrb"].classes[14] == "stop"
    assert DATASETS["neu"].classes[4] == "rolled-in scale"


def test_split_policy_states_the_seeded_split():
    for name in ("eurosat", "neu"):
        entry = DATASETS[name]
        assert entry.holdout == 0.2 and entry.splits == ("train", "test")
        assert "80/20" in entry.split_policy and f"seed {entry.split_seed}" in entry.split_policy
    for name in ("hymenoptera", "imagenette", "gtsrb", "breastmnist"):
        assert DATASETS[name].holdout == 0  # an official split exists: use it
    assert DATASETS["retinamnist"].splits == ("train", "val", "test")


def test_augmentation_policy_suits_each_domain():
    assert not DATASETS["gtsrb"].hflip  # a mirrored "turn left" sign means "turn right"
    assert not DATASETS["pneumoniamnist"].hflip  # the heart is on one side
    assert DATASETS["eurosat"].vflip and DATASETS["neu"].vflip  # no "up" from above or on steel
    assert {n for n, e in DATASETS.items() if e.grayscale} == {"pneumoniamnist", "breastmnist", "neu"}


def test_register_and_get(monkeypatch):
    entry = Dataset(name="own", title="Own", task="t", classes=["a", "b"], splits=("train", "val"),
                    split_policy="folders", folder="own", loader="ImageFolder", reader="imagefolder",
                    layout="own/{train,val}/<class>/*.png",
                    archives=(Archive("http://example.org/own.zip", "own.zip", "0" * 32),))
    monkeypatch.setitem(DATASETS, "own", DATASETS.get("own"))  # restored after the test
    assert cu.catalog.register(entry) is entry and cu.catalog.get("own") is entry
    assert entry.urls == ("http://example.org/own.zip",)
    assert entry.checksums == {"own.zip": "md5:" + "0" * 32}
    with pytest.raises(KeyError, match="the catalog has: hymenoptera"):
        cu.catalog.get("imagenet")
