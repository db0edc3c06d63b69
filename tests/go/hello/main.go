// The first Go program of ../shared/seeds/raft-and-etcd-notes.txt (etcd's clientv3 against
// 127.0.0.1:2379), kept as the notes wrote it; only the import list is completed.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	fmt.Println("hello world")
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"127.0.0.1:2379"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatalln(err)
	}
	_ = client

	kv := clientv3.NewKV(client)
	kv.Put(context.TODO(), "helloWorld", "aaa")
	if resp, err := kv.Get(context.TODO(), "helloWorld"); err != nil {
		fmt.Println("error")
	} else {
		fmt.Println(resp.Kvs)
	}
	// /ns/service=127.0.0.1:8000
}
