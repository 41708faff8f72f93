"""vtsnn: virtual temporal spiking neural networks for image restoration.

Importing the package has no side effects; the submodules are the API:
``vtsnn.coding``, ``vtsnn.neurons``, ``vtsnn.models``, ``vtsnn.losses``,
``vtsnn.metrics``.
"""

__version__ = "0.1.0"
