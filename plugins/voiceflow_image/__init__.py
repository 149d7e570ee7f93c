"""Text-to-image with diffusers: the ``image.generate`` node."""
