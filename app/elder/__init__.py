"""长辈版: the villager's larger-text, larger-target version of every page, chosen per user."""
