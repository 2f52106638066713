"""Where the face models are found, how they are checked, and how a worker loads them.

- `locate`: the folder holding the four dlib models (option, env, or the
  `face_recognition_models` wheel) and the OpenCV Haar cascade file (the folder's copy, else
  the opencv wheel's).
- `verify`: each dlib model's and the cascade's SHA-256 against `manifest.json`, once per process.
- `loader`: every model loaded into memory, once per worker process.
"""

from facemarket.models.errors import ModelError

__all__ = ["ModelError"]
