"""The API document says what the API does: payloads that refuse unknown fields say so."""
from __future__ import annotations

from typing import TYPE_CHECKING

# Litestar's own msgspec plugin (private path, Litestar pinned): ours only adds one flag to its output.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """`forbid_unknown_fields=True` becomes `additionalProperties: false`. Without it the document
    promised that extra keys are accepted, while the API answers them with 400 (a typo such as
    "phnoe" must not be dropped silently)."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema
