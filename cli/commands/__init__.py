"""The subcommand groups of `facemarket`, one module per area."""
