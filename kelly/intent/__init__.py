"""Intent: song intent documents, the rule-breaking catalogue and its generators."""
