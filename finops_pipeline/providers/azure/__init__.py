"""Azure Cost Management: subscriptions' daily costs through the Query API.

Pure, provider-owned pieces: the request body and its time windows (:mod:`.query`), parsing
raw responses with exact decimals (:mod:`.parsing`), following ``nextLink`` (:mod:`.paging`),
the real ``azure-mgmt-costmanagement`` client (:mod:`.client`), a 429 policy that reads Cost
Management's own retry headers (:mod:`.throttling`), typed errors (:mod:`.errors`), one
range's collection (:mod:`.collector`) and a synthetic tenant served to the unchanged SDK
(:mod:`.sandbox`). Nothing here knows Dagster or the database.
"""
