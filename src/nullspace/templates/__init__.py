"""Templates: declarative specs built into read-only root filesystems, cached by digest.

    spec = builtin_spec("code-interpreter")        # or load_spec("my.toml")
    image = ensure_template("code-interpreter")    # builds once, then instant
    image.rootfs                                   # <data_dir>/templates/<name>/<digest>/rootfs

The runtime imports `MOUNT_POINTS` / `check_mount_points` from here (stdlib only, no build
tools needed to import this package).
"""

from nullspace.templates._models import BuildProgress, ProgressCallback, TemplateImage
from nullspace.templates.builder import STEPS, BuildPlan, build, plan_build
from nullspace.templates.cache import (
    builtin_names,
    builtin_spec,
    default_data_dir,
    delete_template,
    ensure_template,
    find_template,
    list_templates,
    prune_templates,
    share_builds,
)
from nullspace.templates.mounts import MOUNT_FILES, MOUNT_POINTS, check_mount_points
from nullspace.templates.spec import (
    BUILDER_VERSION,
    FileSpec,
    TemplateSpec,
    TemplateSpecError,
    load_spec,
    parse_spec,
)

__all__ = [
    "BUILDER_VERSION",
    "MOUNT_FILES",
    "MOUNT_POINTS",
    "STEPS",
    "BuildPlan",
    "BuildProgress",
    "FileSpec",
    "ProgressCallback",
    "TemplateImage",
    "TemplateSpec",
    "TemplateSpecError",
    "build",
    "builtin_names",
    "builtin_spec",
    "check_mount_points",
    "default_data_dir",
    "delete_template",
    "ensure_template",
    "find_template",
    "list_templates",
    "load_spec",
    "parse_spec",
    "plan_build",
    "prune_templates",
    "share_builds",
]
