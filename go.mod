module github.com/hotcb/hotcb

go 1.26
