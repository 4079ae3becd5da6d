"""The fine-tune command with one process of a torchrun job made to fail (used by
tests/test_finetune_distributed.py; run it as ``torchrun ... this_file.py DATA --output OUT``).

Process 1 meets an image that can no longer be read while it embeds its share, as if the file
had been truncated after the scan; the other processes are then waiting for it in a collective.
"""

import sys

from course_utils import distributed, features, finetune
from course_utils.data.images import UnreadableImage

_embed = features.embed


def embed_failing_in_process_1(*args, **kwargs):
    if distributed.job_from_env().rank == 1:
        raise UnreadableImage("cannot read train/ants/0013035.jpg: image file is truncated")
    return _embed(*args, **kwargs)


if __name__ == "__main__":
    features.embed = embed_failing_in_process_1
    sys.exit(finetune.main())
