package sqlqueue

// StatsQueries is statsQueries, for the tests' query plans.
var StatsQueries = statsQueries
