"""The pure domain: the invitation aggregate, the documents rules, the service standard. No I/O."""
