"""Answer keys for the book's exercises, one module per chapter (named after its home module).

Importing this package registers every key with :mod:`diffnotes.selfcheck`; a new chapter adds
a module here and nothing else. Students call :func:`diffnotes.selfcheck.check`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
