"""Optimisation library: controllers, models and coordinators (no mosaik import)."""
