"""Project templates: ready-to-run pipelines to start from (``headwater template list | copy``).

::

    from headwater.templates import copy_template, list_templates

    for t in list_templates():
        print(t.name, "-", t.description)
    copy_template("penguin", "my-project", pipeline_name="my_penguins")

Each template is package data (``headwater/templates/<name>/``): a ``pipeline.py``, model code under
``models/``, YAML ``configs/``, ``data/``, ``tests/`` for the model code and a README. Importing this
package imports nothing heavy.
"""

from headwater.templates.scaffold import (
    PIPELINE_NAME_RE,
    CopyResult,
    TemplateError,
    TemplateInfo,
    copy_template,
    list_templates,
)

__all__ = [
    "PIPELINE_NAME_RE",
    "CopyResult",
    "TemplateError",
    "TemplateInfo",
    "copy_template",
    "list_templates",
]
