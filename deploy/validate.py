"""The packaged stack as CloudFormation will see it, checked offline.

cfn-lint reads a SAM template against SAM's schemas without transforming it, so
problems in what the transform produces (an action IAM does not know, a reference to a
resource SAM names) would reach a real deployment. The check therefore also runs the SAM
translator, as CloudFormation does, and lints its output.

The translator needs what ``aws cloudformation package`` provides: code in S3. The
local ``CodeUri`` of each function (Chalice's ``deployment.zip``) is replaced by an S3
location of that shape; nothing is uploaded.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from typing import Any

PLACEHOLDER_CODE_URI = "s3://packaged-code/deployment.zip"
_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"


class _NoManagedPolicies:
    """Every function has its own role, so the transform looks up no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def lint(template: Mapping[str, Any], region: str) -> list[str]:
    """cfn-lint's findings, informational rules included, one line each."""
    import cfnlint.api

    config = cfnlint.api.ManualArgs(regions=[region], include_checks=["I"])
    return [str(match) for match in cfnlint.api.lint(json.dumps(template), config=config)]


def sam_transform(template: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The plain CloudFormation the SAM transform makes of a packaged template."""
    from samtranslator.translator.transform import transform

    packaged = copy.deepcopy(dict(template))
    for resource in packaged.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == _FUNCTION and not str(properties.get("CodeUri", "")).startswith(
            "s3://"
        ):
            properties["CodeUri"] = PLACEHOLDER_CODE_URI
        if resource.get("Type") == _LAYER and not str(properties.get("ContentUri", "")).startswith(
            "s3://"
        ):
            properties["ContentUri"] = PLACEHOLDER_CODE_URI
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator takes the region from boto3
    try:
        translated: dict[str, Any] = transform(packaged, {}, _NoManagedPolicies())
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION")
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    return translated


def validate_packaged(template: Mapping[str, Any], region: str) -> list[str]:
    """Problems found in a ``chalice package`` SAM template: by cfn-lint, by the SAM
    transform, and by cfn-lint again on the transformed template."""
    from samtranslator.model.exceptions import InvalidDocumentException

    problems = [f"SAM template: {finding}" for finding in lint(template, region)]
    try:
        translated = sam_transform(template, region)
    except InvalidDocumentException as error:
        return [*problems, *(f"SAM transform: {cause}" for cause in error.causes)]
    problems += [f"transformed template: {finding}" for finding in lint(translated, region)]
    return problems
