"""mosaik simulators, world assembly and the command line."""
