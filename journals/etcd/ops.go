package etcd

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The writes of the shared transactions are built as etcd's protocol
// messages: clientv3's Op and Cmp copy every comparison by protobuf
// reflection three times on its way to the wire, which cost the client
// more than the rest of a write.

// createdAt compares key's creation revision with rev (0: no such key).
func createdAt(key string, result pb.Compare_CompareResult, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE, Result: result,
		TargetUnion: &pb.Compare_CreateRevision{CreateRevision: rev}}
}

func txnOp(cmps []*pb.Compare, then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Compare: cmps, Success: then, Failure: els}}}
}

func putOp(key, value string, lease clientv3.LeaseID) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(value), Lease: int64(lease)}}}
}

func deleteOp(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}}}
}

func rangeOp(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

// getOp reads key; countOnly, only whether it is there.
func getOp(key string, countOnly bool) *pb.RequestOp {
	return rangeOp(&pb.RangeRequest{Key: []byte(key), CountOnly: countOnly})
}

// prefixOp reads every key under pfx.
func prefixOp(pfx string) *pb.RequestOp {
	return rangeOp(&pb.RangeRequest{Key: []byte(pfx), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(pfx))})
}

// firstCreatedOp reads the key under pfx created first
// (clientv3.WithFirstCreate).
func firstCreatedOp(pfx string) *pb.RequestOp {
	return rangeOp(&pb.RangeRequest{Key: []byte(pfx), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(pfx)), Limit: 1,
		SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_CREATE})
}
