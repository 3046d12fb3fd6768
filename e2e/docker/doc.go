// Package docker holds the end-to-end tests of rops' image and
// docker-compose.yml on a real Docker engine: the cluster service, the
// per-node containers, a node container killed or cut off from the network
// mid-job, and the job container killed mid-job. They drive the docker and
// docker-compose commands and are skipped when no Docker daemon answers.
package docker
