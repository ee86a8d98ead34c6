"""The plan: its value and how it is computed (pure), how the target's state is read to build it, the pending record (journal), saved plans."""
