"""Services: orchestration between the data layer and the views, API and CLI.

A service plans work over many files (through :mod:`app.data`'s readers and index), runs it (threads or a Dask
cluster), caches results and writes them out, using :mod:`app.science` for the numbers. Views, the API and the CLI
call services; services never import them.

- :mod:`app.services.timeseries`: SO2 mass and flux time series around a volcano (plan, run, cache, CSV).
- :mod:`app.services.geo`: GEO products, frames and the ring mosaic (read a slot, compose, cache the frame).
"""
