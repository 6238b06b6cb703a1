"""The project template `sagelab init` renders with copier, and the versions of it sagelab has shipped.

    from sagelab.templates import create_project, update_project
    create_project(Path("churn-model"), {"aws_region": "eu-west-1"}, defaults=True)

The template itself is the folder `project/` beside this file (copier.yml and template/).
"""

from sagelab.templates.render import TemplateError, create_project, parse_data, update_project
from sagelab.templates.versions import TEMPLATE_DIR, TEMPLATE_VERSION, publish, template_cache

__all__ = [
    "TEMPLATE_DIR",
    "TEMPLATE_VERSION",
    "TemplateError",
    "create_project",
    "parse_data",
    "publish",
    "template_cache",
    "update_project",
]
