"""What each data set of the course is: source, checksum, license, split policy (notebook 00).

One entry per data set, keyed by name: ``cu.catalog.DATASETS["eurosat"]``. The entry says
where the data comes from (``urls``, ``checksums``), how to cite it, how it is split, which
standard loader reads it and which augmentations suit its domain. ``cu.data`` does the
work (fetch, verify, load); this module only describes, so it imports nothing heavy.

Checksums are the ones the standard loaders use (torchvision's and medmnist's md5s). Where
upstream publishes none (hymenoptera), the sha256 of every file is pinned in a manifest
that ships with the package: ``course_utils/data/manifests/<folder>.sha256``.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Archive:
    """One file to download: URL, md5 as published by the standard loader, where it unpacks."""

    url: str
    filename: str
    md5: str | None = None  # None: upstream publishes none; the data set's manifest checks it
    into: str = ""  # sub-folder of the data set's folder to unpack into ("" = the folder)
    extract: bool = True  # False: the file is used as is (MedMNIST .npz)


@dataclass(frozen=True)
class Dataset:
    """One data set of the course (see the module docstring)."""

    name: str
    title: str
    task: str
    classes: list
    splits: tuple
    split_policy: str  # one sentence a notebook can print
    folder: str  # its folder in the data root and in a mirror
    loader: str  # one sentence naming the standard loader that reads it
    reader: str  # which reader in cu.data builds it (imagefolder, eurosat, imagenette, ...)
    layout: str  # what the folder holds, for "put it here" messages
    license: str = "unknown"
    citation: str = ""
    homepage: str = ""
    archives: tuple = ()  # Archive entries; empty: no public direct download (fetch by hand)
    archive_root: str = ""  # folder inside the unpacked archives that becomes `folder`
    members: tuple = ()  # files of a shared folder that belong to this set (MedMNIST)
    manifest: str = ""  # sha256 list shipped in course_utils/data/manifests (or a full path)
    size_mb: float = 0.0  # full upstream release on disk, approximate
    mirror_size_mb: float = 0.0  # the course mirror's copy (a subset for some sets)
    # Seeded split, for sets without an official one: `holdout` of each class goes to "test".
    holdout: float = 0.0
    split_seed: int = 0
    # Fast mode (COURSE_FAST=1): images per class in the train split and in the other splits.
    fast_per_class: tuple = (16, 8)
    # Augmentation that suits the domain (used by cu.data.make_transform).
    grayscale: bool = False  # single-channel content: repeat to 3 channels for the backbone
    hflip: bool = True
    vflip: bool = False
    rotate: int = 0  # max degrees of random rotation
    crop_scale: tuple = (0.08, 1.0)  # RandomResizedCrop scale; near 1 when the object fills the image
    center_crop: bool = True  # eval: resize + center crop (photos) or resize the whole image
    notes: list = field(default_factory=list)

    @property
    def urls(self):
        """Where to download it; the authors' page when there is no direct download."""
        return tuple(a.url for a in self.archives) or ((self.homepage,) if self.homepage else ())

    @property
    def checksums(self):
        """{file: checksum}: md5 of each download, or the manifest of per-file sha256."""
        sums = {a.filename: f"md5:{a.md5}" for a in self.archives if a.md5}
        if self.manifest:
            sums["(each file)"] = f"sha256: course_utils/data/manifests/{self.manifest}"
        return sums

    @property
    def size(self):
        """Size on disk, in words."""
        text = f"about {self.size_mb:,.0f} MB" if self.size_mb >= 1 else f"{self.size_mb:.1f} MB"
        if self.mirror_size_mb and abs(self.mirror_size_mb - self.size_mb) > 0.5:
            text += f" ({self.mirror_size_mb:,.0f} MB in the course mirror)"
        return text


_MEDMNIST_CITATION = (
    "J. Yang, R. Shi, D. Wei et al., MedMNIST v2: a large-scale lightweight benchmark for 2D "
    "and 3D biomedical image classification, Scientific Data 10, 41 (2023); "
    "J. Yang, R. Shi, B. Ni, MedMNIST classification decathlon, ISBI 2021."
)
_MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{flag}.npz?download=1"


def _medmnist(name, title, task, classes, md5, size_mb, source, **policy):
    return Dataset(
        name=name, title=title, task=task, classes=classes, splits=("train", "val", "test"),
        split_policy="Official MedMNIST v2 train/val/test split (stored in the .npz).",
        folder="medmnist", reader="medmnist",
        loader=f"medmnist.{title}(split, root=<data>/medmnist, size=28, as_rgb=True), "
               "wrapped so .classes and .targets are plain lists.",
        layout=f"medmnist/{name}.npz",
        license="CC BY 4.0 (MedMNIST); not for clinical use",
        citation=f"{_MEDMNIST_CITATION} Source data: {source}.",
        homepage="https://medmnist.com/",
        archives=(Archive(_MEDMNIST_URL.format(flag=name), f"{name}.npz", md5, extract=False),),
        members=(f"{name}.npz",), manifest="medmnist.sha256",
        size_mb=size_mb, mirror_size_mb=size_mb, fast_per_class=(20, 10),
        # 28x28 images: crop gently, the lesion or lung can be anywhere in the frame.
        crop_scale=(0.8, 1.0), center_crop=False, **policy,
    )


_GTSRB_BASE = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"

GTSRB_CLASSES = [
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120",
    "no passing", "no passing for trucks", "right-of-way at next intersection", "priority road",
    "yield", "stop", "no vehicles", "no trucks", "no entry", "general caution",
    "dangerous curve left", "dangerous curve right", "double curve", "bumpy road",
    "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all speed and passing limits", "turn right ahead", "turn left ahead", "ahead only",
    "go straight or right", "go straight or left", "keep right", "keep left",
    "roundabout mandatory", "end of no passing", "end of no passing for trucks",
]

DATASETS = {
    "hymenoptera": Dataset(
        name="hymenoptera", title="Hymenoptera (ants vs bees)",
        task="binary classification of photos", classes=["ants", "bees"],
        splits=("train", "val"),
        split_policy="The train/val folders that ship with the data (244 / 153 images).",
        folder="hymenoptera_data", reader="imagefolder",
        loader="torchvision.datasets.ImageFolder(<data>/hymenoptera_data/<split>); it skips "
               "the placeholder imageNotFound.gif (fastai does not).",
        layout="hymenoptera_data/{train,val}/{ants,bees}/*.jpg",
        license="No license stated; ImageNet images for non-commercial research and education "
                "(tutorial code BSD)",
        citation="S. Chilamkurthy, Transfer Learning for Computer Vision Tutorial, PyTorch "
                 "tutorials; images from ImageNet (Deng et al., CVPR 2009).",
        homepage="https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html",
        archives=(Archive("https://download.pytorch.org/tutorial/hymenoptera_data.zip",
                          "hymenoptera_data.zip"),),
        archive_root="hymenoptera_data", manifest="hymenoptera_data.sha256",
        size_mb=47.4, mirror_size_mb=47.4, fast_per_class=(20, 10),
    ),
    "imagenette": Dataset(
        name="imagenette", title="Imagenette (imagenette2, 160 px)",
        task="10-class classification of photos",
        classes=["tench", "English springer", "cassette player", "chain saw", "church",
                 "French horn", "garbage truck", "gas pump", "golf ball", "parachute"],
        splits=("train", "val"),
        split_policy="The official imagenette2 train/val folders.",
        folder="imagenette2-160", reader="imagenette",
        loader='torchvision.datasets.Imagenette(<data>, split, size="160px").',
        layout="imagenette2-160/{train,val}/<wnid>/*.JPEG",
        license="Apache-2.0 (fastai/imagenette); images under the ImageNet terms "
                "(non-commercial research and education)",
        citation="J. Howard, Imagenette, https://github.com/fastai/imagenette (fast.ai); "
                 "images from ImageNet (Deng et al., CVPR 2009).",
        homepage="https://github.com/fastai/imagenette",
        archives=(Archive("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
                          "imagenette2-160.tgz", "e793b78cc4c9e9a4ccc0c1155377a412"),),
        archive_root="imagenette2-160",
        size_mb=99.0, mirror_size_mb=8.5, fast_per_class=(10, 5),
        notes=["The course mirror holds 60 train + 20 val images per class, resized to 224x224 "
               "by the uploader (official 160 px keeps the aspect ratio)."],
    ),
    "eurosat": Dataset(
        name="eurosat", title="EuroSAT (RGB)",
        task="10-class land-cover classification of 64x64 Sentinel-2 patches",
        classes=["annual crop", "forest", "herbaceous vegetation", "highway", "industrial",
                 "pasture", "permanent crop", "residential", "river", "sea/lake"],
        splits=("train", "test"),
        split_policy="No official split: a stratified 80/20 train/test split as in Helber et "
                     "al., seeded (seed 0) so every run gets the same images.",
        folder="eurosat", reader="eurosat",
        loader="torchvision.datasets.EuroSAT(<data>/eurosat) + a seeded stratified 80/20 split.",
        layout="eurosat/eurosat/2750/<Class>/*.jpg",
        license="MIT (EuroSAT); Copernicus Sentinel data terms apply",
        citation="P. Helber, B. Bischke, A. Dengel, D. Borth, EuroSAT: a novel dataset and deep "
                 "learning benchmark for land use and land cover classification, IEEE JSTARS "
                 "12(7), 2019; and IGARSS 2018.",
        homepage="https://github.com/phelber/EuroSAT",
        archives=(Archive("https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
                          "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
                          "EuroSAT.zip", "c8fa014336c82ac7804f0398fcb19387", into="eurosat"),),
        size_mb=92.0, mirror_size_mb=34.0, holdout=0.2, split_seed=0, fast_per_class=(10, 5),
        # Seen from above there is no "up": flips both ways and any rotation keep the label.
        hflip=True, vflip=True, rotate=90, crop_scale=(0.5, 1.0), center_crop=False,
        notes=["The course mirror holds 1000 images per class (10,000 of 27,000), byte-identical."],
    ),
    "pneumoniamnist": _medmnist(
        "pneumoniamnist", "PneumoniaMNIST", "binary classification of chest X-rays",
        ["normal", "pneumonia"], "28209eda62fecd6e6a2d98b1501bb15f", 4.2,
        "Kermany et al., Cell 2018 (pediatric chest X-ray)",
        # Anatomy has a left and a right (the heart): no flips, only small rotations.
        grayscale=True, hflip=False, rotate=10,
    ),
    "breastmnist": _medmnist(
        "breastmnist", "BreastMNIST", "binary classification of breast ultrasound",
        ["malignant", "normal or benign"], "750601b1f35ba3300ea97c75c52ff8f6", 0.6,
        "Al-Dhabyani et al., Data in Brief 2020 (breast ultrasound)",
        grayscale=True, hflip=True, rotate=10,
    ),
    "retinamnist": _medmnist(
        "retinamnist", "RetinaMNIST", "5-grade ordinal classification of fundus photos",
        ["grade 0", "grade 1", "grade 2", "grade 3", "grade 4"],
        "bd4c0672f1bba3e3a89f0e4e876791e4", 3.3, "DeepDRiD challenge (fundus images)",
        # Left and right eyes are mirror images of each other, so a flip is another real eye.
        hflip=True, rotate=15,
    ),
    "neu": Dataset(
        name="neu", title="NEU surface defects (hot-rolled steel strip)",
        task="6-class classification of 200x200 grayscale defect images",
        classes=["crazing", "inclusion", "patches", "pitted surface", "rolled-in scale",
                 "scratches"],
        splits=("train", "test"),
        split_policy="No official split: a stratified 80/20 train/test split, seeded (seed 0).",
        folder="neu-surface-defects", reader="imagefolder_seeded",
        loader="torchvision.datasets.ImageFolder(<data>/neu-surface-defects) + a seeded "
               "stratified 80/20 split.",
        layout="neu-surface-defects/{crazing,inclusion,patches,pitted_surface,rolled-in_scale,"
               "scratches}/*.jpg (one folder per class; .bmp works too)",
        license="No license stated by the authors; free for research and education with "
                "citation",
        citation="K. Song, Y. Yan, A noise robust method based on completed local binary "
                 "patterns for hot-rolled steel strip surface defects, Applied Surface Science "
                 "285 (2013) 858-864; Y. He, K. Song, Q. Meng, Y. Yan, IEEE TIM 69(4) (2020).",
        homepage="http://faculty.neu.edu.cn/songkechen/zh_CN/zdylm/263270/list/index.htm",
        size_mb=26.9, mirror_size_mb=26.9, holdout=0.2, split_seed=0, fast_per_class=(10, 5),
        # Textures of a steel strip: any flip is another plausible defect image.
        grayscale=True, hflip=True, vflip=True, crop_scale=(0.5, 1.0), center_crop=False,
        notes=["No public direct download: the authors hand it out from their page. The "
               "course mirror is the NEU-DET release (6 x 300 JPEGs)."],
    ),
    "gtsrb": Dataset(
        name="gtsrb", title="GTSRB (German Traffic Sign Recognition Benchmark)",
        task="43-class classification of traffic-sign crops", classes=GTSRB_CLASSES,
        splits=("train", "test"),
        split_policy="The official train/test split (the course mirror is a subset: 40 train "
                     "and 15 test images per class).",
        folder="gtsrb", reader="gtsrb",
        loader="torchvision.datasets.GTSRB(<data>, split), wrapped so .classes and .targets "
               "exist.",
        layout="gtsrb/GTSRB/Training/000NN/*.ppm, gtsrb/GTSRB/Final_Test/Images/*.ppm, "
               "gtsrb/GT-final_test.csv",
        license="No explicit license from the authors; free for research, cite the paper",
        citation="J. Stallkamp, M. Schlipsing, J. Salmen, C. Igel, Man vs. computer: "
                 "benchmarking machine learning algorithms for traffic sign recognition, "
                 "Neural Networks 32 (2012) 323-332.",
        homepage="https://benchmark.ini.rub.de/gtsrb_dataset.html",
        archives=(
            Archive(_GTSRB_BASE + "GTSRB-Training_fixed.zip", "GTSRB-Training_fixed.zip",
                    "513f3c79a4c5141765e10e952eaa2478"),
            Archive(_GTSRB_BASE + "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_Images.zip",
                    "c7e4e6327067d32654124b0fe9e82185"),
            Archive(_GTSRB_BASE + "GTSRB_Final_Test_GT.zip", "GTSRB_Final_Test_GT.zip",
                    "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
        ),
        size_mb=350.0, mirror_size_mb=7.7, fast_per_class=(4, 2),
        # A flipped "turn left" is a "turn right": no flips; small rotations and crops only.
        hflip=False, rotate=10, crop_scale=(0.8, 1.0), center_crop=False,
        notes=["The course mirror's images were downscaled to 32x32 by their uploader."],
    ),
}


def register(dataset):
    """Add (or replace) a catalog entry, e.g. a classroom's own data set; returns it."""
    DATASETS[dataset.name] = dataset
    return dataset


def get(name):
    """The catalog entry of a data set, with a clear error for an unknown name."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; the catalog has: {', '.join(DATASETS)}")
    return DATASETS[name]
