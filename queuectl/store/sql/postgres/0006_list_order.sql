-- `list` reads runs oldest first in keyset pages: (created_at, id) in order, whatever the count.
CREATE INDEX runs_listed ON runs (created_at, id);
