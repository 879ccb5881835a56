"""Backends written in Python, registered with :func:`rdeploy.register_backend` (or through the
``rdeploy.backends`` entry points of the rdeploy package):

- ``rdeploy.pybackends.ncnn:NcnnManager``: ncnn, converted with pnnx (docs/backends/ncnn.md);
- ``rdeploy.pybackends.tvm:TVMManager``: Apache TVM, compiled with Relax (docs/backends/tvm.md).

Each manager has MMDeploy's classmethods (``is_available``, ``get_version``, ``to_backend``,
``build_wrapper``) plus ``why_unavailable()`` and ``ir_passes(deploy_cfg)``. Engines are imported
only when used, so importing these modules is cheap and works without the engines.

(Not ``rdeploy.backends``: importing a subpackage of that name would replace the function
``rdeploy.backends()`` on the package.)
"""
