"""A villager's messages (消息): points posted or deducted, a claim decided, an objection
answered. Read from the records themselves (nothing is copied into a message table), so a
message can never disagree with what happened; unread is "newer than when the list was last
opened" (User.messages_seen_at)."""
