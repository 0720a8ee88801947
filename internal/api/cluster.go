package api

import (
	"context"
	"net/http"

	"github.com/tether-hub/tether/internal/cluster"
)

// ClusterSource answers GET /api/v1/cluster (cluster.Node).
type ClusterSource interface {
	Status(ctx context.Context) (cluster.Status, error)
}

// getCluster serves the cluster's nodes, shared-job leaders and stream
// replication health; a hub that is alone answers 404.
func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	if s.d.Cluster == nil {
		s.v1Error(w, r, http.StatusNotFound, "NotClustered", "this hub is not a cluster node (serve --node-name …)")
		return
	}
	st, err := s.d.Cluster.Status(r.Context())
	if err != nil {
		s.v1Error(w, r, http.StatusServiceUnavailable, "ClusterUnavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}
