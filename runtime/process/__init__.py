"""What happens to records over time: `workflow` (transitions and their guards), `approvals/`
(who may decide and what is decided, then what happens), `automations` (event and scheduled),
`notifications`, record `moves` between states, and `setup`, which opens an installed instance
and wires the hooks (`assemble`).
"""
