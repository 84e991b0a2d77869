"""mgcosim: co-simulation of distribution networks with wind-storage microgrids.

The repository's folders are installed as the sub-packages of this one namespace:
``mgcosim.sim`` (mosaik simulators, world, results, command line), ``mgcosim.controllers``
(the optimisation library), ``mgcosim.networks`` (network data and builders) and
``mgcosim.scenarios`` (scenario files and their loader).
"""

from importlib import metadata

try:
    __version__ = metadata.version("mgcosim")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
