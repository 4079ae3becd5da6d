"""What notebook 13 says about Keras, checked with Keras itself (Keras 3 on the PyTorch backend,
in a subprocess: the backend is chosen when Keras is imported, and it stays out of this process).

The notebook's table says that in Keras, unlike PyTorch and fastai, ``trainable = False`` puts
a BatchNormalization layer in inference mode: called with ``training=True`` it normalises with
its moving statistics and leaves them as they are. Unfrozen, the same call uses the batch's
statistics and moves the moving ones.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 4)).astype("float32")
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))

    def moved(call):
        before = keras.ops.convert_to_numpy(layer.moving_mean).copy()
        out = keras.ops.convert_to_numpy(call())
        return float(np.abs(keras.ops.convert_to_numpy(layer.moving_mean) - before).max()), out

    layer.trainable = False
    frozen_moved, frozen_out = moved(lambda: layer(x, training=True))
    _, inference_out = moved(lambda: layer(x, training=False))
    layer.trainable = True
    trained_moved, trained_out = moved(lambda: layer(x, training=True))
    print(json.dumps({"backend": keras.backend.backend(),
                      "frozen_moved": frozen_moved,
                      "frozen_is_inference": bool(np.allclose(frozen_out, inference_out)),
                      "trained_moved": trained_moved,
                      "trained_mean": float(trained_out.mean())}))
""")


def test_a_frozen_keras_batchnorm_runs_in_inference_mode_and_an_unfrozen_one_does_not():
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["backend"] == "torch"
    assert result["frozen_moved"] == 0.0 and result["frozen_is_inference"]
    assert result["trained_moved"] > 0.01 and abs(result["trained_mean"]) < 1e-3  # batch statistics
