"""The screening pipeline's pure steps (no Django): text, structure, validation, rules, decision."""
