"""Aurora DSQL's SQL rules as data (`rules`) and the parser-based check of a SQL text against them (`classify`)."""
