package hosting

import (
	"context"
	"fmt"
)

// Owners lists the IDs of the owners this node keeps objects for: the
// daemon announces them on the DHT, so an owner recovering from nothing
// finds the nodes that hold its data.
func (s *Server) Owners(ctx context.Context) ([]string, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT DISTINCT owner FROM objects`)
	if err != nil {
		return nil, fmt.Errorf("list owners: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("list owners: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
