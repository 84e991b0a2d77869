"""Network builders (pandapower) and their parameter data."""
