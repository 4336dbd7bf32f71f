"""The spec: one validated file drives every stage."""

from automodel.spec._load import (
    dump_spec,
    load_spec,
    nearest_name,
    spec_from_dict,
    spec_json_schema,
)
from automodel.spec._models import (
    CompressSpec,
    DataSpec,
    FeaturesSpec,
    ModelSpec,
    RuntimeSpec,
    SearchSpec,
    ServeSpec,
    Spec,
    TrackingSpec,
    TrainSpec,
)
from automodel.spec._space import (
    Choice,
    Domain,
    Fixed,
    Float,
    Int,
    default_value,
    grid_values,
    parse_domain,
    parse_space,
)

__all__ = [
    "Choice",
    "CompressSpec",
    "DataSpec",
    "Domain",
    "FeaturesSpec",
    "Fixed",
    "Float",
    "Int",
    "default_value",
    "ModelSpec",
    "RuntimeSpec",
    "SearchSpec",
    "ServeSpec",
    "Spec",
    "TrackingSpec",
    "TrainSpec",
    "dump_spec",
    "grid_values",
    "load_spec",
    "nearest_name",
    "parse_domain",
    "parse_space",
    "spec_from_dict",
    "spec_json_schema",
]
