"""Keras 3 (a dev dependency) runs on its torch backend in these tests: set before any test
module imports it."""

import os

os.environ["KERAS_BACKEND"] = "torch"
