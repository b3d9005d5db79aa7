"""End users' profiles: fields, custom attributes, installations."""
